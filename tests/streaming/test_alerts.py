"""Price alerts and per-subscription filters over /ws, through the real ASGI application, the Redis
channel layer and the database: prices are stored, then published as the poller does.

Absence is checked without waiting on the clock: a plain subscriber in the same process (the
`witness`) receives each published price from the same channel-layer message as the connection
under test, so once the witness has it, the connection has handled it too, and a `ping` answered
next proves that nothing else was sent."""

import asyncio
import json
import time
from decimal import Decimal as D

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from market.domain.prices import Quote
from market.payloads import price_payload
from market.prices import record_quotes
from streaming.broadcast import publish
from streaming.groups import price_group
from tests.streaming.test_consumer import _close_everything, connect, send  # noqa: F401 (the fixture closes every connection)

pytestmark = [pytest.mark.django_db(transaction=True)]

@pytest.fixture(autouse=True)
def _no_message_rate_limit(settings):
    """These sessions send more than 10 messages a second; the limit is tested elsewhere."""
    settings.WS_MAX_MESSAGES_PER_SECOND = 1000


MIN = 60_000
T0 = int(time.time() * 1000) // 1000 * 1000  # the tests' prices are stored at T0 and after


async def store(price: str, ts: int, symbol: str = "BTC", source: str = "binance"):
    return await sync_to_async(record_quotes)(source, [Quote(symbol, D(price), ts)], ts)


async def stored_and_published(price: str, ts: int, symbol: str = "BTC"):
    ticks = await store(price, ts, symbol)
    assert ticks, "the price was stored"
    await sync_to_async(publish)(ticks=ticks)
    return ticks


async def witness(symbol: str = "BTC"):
    ws = await connect()
    await send(ws, {"type": "subscribe", "symbol": symbol})
    return ws


async def seen_by(witness_ws, ts: int) -> None:
    """Wait until the witness has the price stored at `ts` (and so has every local subscriber)."""
    while True:
        message = await witness_ws.receive_json_from(timeout=10)
        if message["type"] == "price_update" and message["timestamp"] == ts:
            return


async def received_through(ws, ts: int) -> list[dict]:
    """What the connection is sent up to the price stored at `ts`, that one included."""
    out = []
    while not out or not (out[-1]["type"] == "price_update" and out[-1]["timestamp"] == ts):
        out.append(await ws.receive_json_from(timeout=10))
    return out


async def received_until_pong(ws) -> list[dict]:
    """Everything the connection was sent before it answers a ping now."""
    await ws.send_to(text_data=json.dumps({"type": "ping"}))
    out = []
    while (message := await ws.receive_json_from(timeout=10))["type"] != "pong":
        out.append(message)
    return out


async def set_alert(ws, **condition) -> dict:
    answer = await send(ws, {"type": "alert", "symbol": "BTC", **condition})
    assert answer["type"] == "alert_set", answer
    return answer


async def test_an_above_alert_fires_once_when_a_stored_price_reaches_it_and_sends_no_prices(sandbox):
    await store("69000", T0)
    ws, seen = await connect(), await witness()
    answer = await set_alert(ws, above=70000)
    assert answer == {"type": "alert_set", "id": "a1", "symbol": "BTC", "source": "binance", "above": 70000.0, "repeat": False,
                      "seq": answer["seq"]}
    for i, price in enumerate(["69500", "70000.5", "71000", "60000", "72000"], start=1):
        await stored_and_published(price, T0 + i * 1000)
        await seen_by(seen, T0 + i * 1000)
    [alert] = await received_until_pong(ws)  # no price_update: the client subscribed to none
    assert alert == {"type": "alert", "id": "a1", "symbol": "BTC", "source": "binance", "above": 70000.0, "repeat": False,
                     "price": 70000.5, "timestamp": T0 + 2000, "seq": answer["seq"] + 1}
    assert (await send(ws, {"type": "get_subscriptions"}))["alerts"] == []  # done


async def test_a_below_alert_ignores_prices_that_do_not_reach_it(sandbox):
    await store("100", T0)
    ws, seen = await connect(), await witness()
    await set_alert(ws, below=90)
    for i, price in enumerate(["95", "90.01", "120"], start=1):
        await stored_and_published(price, T0 + i * 1000)
    await seen_by(seen, T0 + 3000)
    assert await received_until_pong(ws) == []
    assert [a["id"] for a in (await send(ws, {"type": "get_subscriptions"}))["alerts"]] == ["a1"]  # still waiting


async def test_a_repeating_alert_fires_again_only_after_the_price_crossed_back(sandbox):
    await store("100", T0)
    ws, seen = await connect(), await witness()
    await set_alert(ws, above=110, repeat=True)
    prices = ["111", "115", "112", "109", "110", "120", "100", "108", "130"]
    for i, price in enumerate(prices, start=1):
        await stored_and_published(price, T0 + i * 1000)
    await seen_by(seen, T0 + len(prices) * 1000)
    alerts = await received_until_pong(ws)
    assert [(a["type"], a["price"]) for a in alerts] == [("alert", 111), ("alert", 110), ("alert", 130)]
    assert [a["id"] for a in (await send(ws, {"type": "get_subscriptions"}))["alerts"]] == ["a1"]


async def test_a_change_alert_compares_with_the_stored_price_one_window_earlier(sandbox):
    now = T0 + 120 * MIN  # the history is stored in the past, the stream's prices after it
    await store("100", T0)
    await store("100", now - 70 * MIN)
    await store("103", now - 30 * MIN)
    await store("103", now - 1000)
    ws, seen = await connect(), await witness()
    answer = await set_alert(ws, change_pct=5, window="1h")
    assert (answer["change_pct"], answer["window"]) == (5.0, "1h")
    await stored_and_published("104.9", now)  # 4.9% from 100 an hour before: not yet
    await stored_and_published("95.5", now + 1000)  # -4.5%
    await stored_and_published("105", now + 2000)  # 5%
    await stored_and_published("110", now + 3000)  # done already
    await seen_by(seen, now + 3000)
    [alert] = await received_until_pong(ws)
    assert {k: alert[k] for k in ("type", "id", "change_pct", "window", "price", "timestamp", "change", "reference_price",
                                  "reference_timestamp")} == {
        "type": "alert", "id": "a1", "change_pct": 5.0, "window": "1h", "price": 105.0, "timestamp": now + 2000, "change": 5.0,
        "reference_price": 100.0, "reference_timestamp": now - 70 * MIN}


async def test_a_price_crossing_an_alert_fires_it_once_per_alert_whatever_the_subscribers(sandbox):
    await store("100", T0)
    alert_only, seen = await connect(), await witness()
    both = await connect()
    await send(both, {"type": "subscribe", "symbol": "BTC"})
    assert (await both.receive_json_from(timeout=5))["type"] == "price_update"  # the snapshot
    for ws in (alert_only, both):
        await set_alert(ws, above=150)
    ticks = await stored_and_published("160", T0 + 1000)
    await sync_to_async(publish)(ticks=ticks)  # the same stored price published twice (a poll and a feed)
    await stored_and_published("170", T0 + 2000)
    await seen_by(seen, T0 + 2000)
    assert [(m["type"], m["price"]) for m in await received_until_pong(alert_only)] == [("alert", 160)]
    assert [(m["type"], m["price"]) for m in await received_until_pong(both)] == [
        ("price_update", 160), ("alert", 160), ("price_update", 170)]


async def test_alerts_are_listed_and_removed_by_id(sandbox):
    await store("100", T0)
    await store("2000", T0, symbol="ETH")
    ws, seen = await connect(), await witness()
    before = btc_channels()
    await set_alert(ws, above=150)
    [mine] = btc_channels() - before  # this connection joined for its alert
    await set_alert(ws, below=50, repeat=True)
    await send(ws, {"type": "alert", "symbol": "ETH", "change_pct": 2.5, "window": "15m"})
    listed = await send(ws, {"type": "get_subscriptions"})
    assert listed["symbols"] == [] and listed["subscriptions"] == []
    assert listed["alerts"] == [
        {"id": "a1", "symbol": "BTC", "source": "binance", "above": 150.0, "repeat": False},
        {"id": "a2", "symbol": "BTC", "source": "binance", "below": 50.0, "repeat": True},
        {"id": "a3", "symbol": "ETH", "source": "binance", "change_pct": 2.5, "window": "15m", "repeat": False}]
    removed = await send(ws, {"type": "unsubscribe", "id": "a1"})
    assert {k: removed[k] for k in ("type", "id", "symbol")} == {"type": "unsubscribed", "id": "a1", "symbol": "BTC"}
    assert "Unknown alert: a1" in (await send(ws, {"type": "unsubscribe", "id": "a1"}))["error"]
    assert [a["id"] for a in (await send(ws, {"type": "get_subscriptions"}))["alerts"]] == ["a2", "a3"]
    await stored_and_published("200", T0 + 1000)  # would have fired a1
    await seen_by(seen, T0 + 1000)
    assert await received_until_pong(ws) == []
    assert mine in btc_channels()
    await send(ws, {"type": "unsubscribe", "id": "a2"})  # the last alert on BTC: its prices are no longer heard
    assert await left(mine)  # the last alert on BTC gone: this connection left the group
    await stored_and_published("10", T0 + 2000)
    await seen_by(seen, T0 + 2000)
    assert await received_until_pong(ws) == []
    assert [a["id"] for a in (await send(ws, {"type": "get_subscriptions"}))["alerts"]] == ["a3"]


def btc_channels() -> set[str]:
    """This process's channels in BTC's price group (other tests' connections may linger there)."""
    return set(get_channel_layer()._groups.get(price_group("binance", "BTC"), ()))


async def left(channel: str) -> bool:
    """Whether the channel leaves BTC's price group (a task may take a moment)."""
    for _ in range(20):
        if channel not in btc_channels():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_an_alert_hears_prices_without_sending_them_once_the_price_subscription_goes(sandbox):
    await store("100", T0)
    ws, seen = await connect(), await witness()
    before = btc_channels()
    await send(ws, {"type": "subscribe", "symbol": "BTC", "min_interval": 1})
    assert (await ws.receive_json_from(timeout=5))["price"] == 100  # the snapshot
    [mine] = btc_channels() - before
    await set_alert(ws, above=150)
    await stored_and_published("110", T0 + 1000)
    assert [m["price"] for m in await received_through(ws, T0 + 1000)] == [110]
    unsubscribed = await send(ws, {"type": "unsubscribe", "symbol": "BTC"})  # the subscription, not the alert
    assert unsubscribed["type"] == "unsubscribed"
    await stored_and_published("120", T0 + 2000)
    await stored_and_published("160", T0 + 3000)
    await seen_by(seen, T0 + 3000)
    assert [(m["type"], m["price"]) for m in await received_until_pong(ws)] == [("alert", 160)]
    # The alert is done and nothing needs BTC's prices: they are no longer heard.
    assert await left(mine)  # this connection left the group
    await stored_and_published("170", T0 + 4000)
    await seen_by(seen, T0 + 4000)
    assert await received_until_pong(ws) == []
    listed = await send(ws, {"type": "get_subscriptions"})
    assert (listed["subscriptions"], listed["alerts"]) == ([], [])


async def test_a_price_already_on_its_way_when_a_done_alert_leaves_the_group_is_not_sent(sandbox):
    await store("100", T0)
    ws, seen = await connect(), await witness()
    await set_alert(ws, above=150)
    layer, group = get_channel_layer(), price_group("binance", "BTC")
    members = set(layer._groups[group])  # this process's channels in BTC's group: the witness's and the alert's
    await stored_and_published("160", T0 + 1000)
    await seen_by(seen, T0 + 1000)
    assert [m["type"] for m in await received_until_pong(ws)] == ["alert"]
    # A price addressed to the group's members before the alert's connection left it.
    tick = (await store("170", T0 + 2000))[0]
    for channel in members:
        await layer.send(channel, {"type": "price.update", "data": price_payload(tick)})
    await seen_by(seen, T0 + 2000)
    assert await received_until_pong(ws) == []


async def test_a_price_already_on_its_way_after_an_unsubscribe_is_not_sent(sandbox):
    await store("100", T0)
    ws, seen = await connect(), await witness()
    await send(ws, {"type": "subscribe", "symbol": "BTC"})
    assert (await ws.receive_json_from(timeout=5))["price"] == 100
    members = set(get_channel_layer()._groups[price_group("binance", "BTC")])
    assert (await send(ws, {"type": "unsubscribe", "symbol": "BTC"}))["type"] == "unsubscribed"
    tick = (await store("110", T0 + 1000))[0]
    for channel in members:  # addressed before the group was left
        await get_channel_layer().send(channel, {"type": "price.update", "data": price_payload(tick)})
    await seen_by(seen, T0 + 1000)
    assert await received_until_pong(ws) == []
    await send(ws, {"type": "subscribe", "symbol": "BTC"})  # subscribed again: the plain fast path
    await stored_and_published("120", T0 + 2000)
    assert [m["price"] for m in await received_through(ws, T0 + 2000)] == [110, 120]  # the snapshot, then the new price


async def test_alerts_past_the_limit_get_an_error_then_close_1008(sandbox, settings):
    settings.WS_MAX_ALERTS = 2
    ws = await connect()
    await set_alert(ws, above=1)
    await set_alert(ws, below=1)
    error = await send(ws, {"type": "alert", "symbol": "ETH", "above": 1})
    assert error["type"] == "error" and "Alert limit exceeded: at most 2" in error["error"]
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}


@pytest.mark.parametrize("message, fragment", [
    ({"type": "alert", "symbol": "BTC"}, "exactly one condition"),
    ({"type": "alert", "symbol": "BTC", "above": 1, "below": 2}, "exactly one condition"),
    ({"type": "alert", "symbol": "BTC", "above": -1}, "Invalid above"),
    ({"type": "alert", "symbol": "BTC", "below": "cheap"}, "Invalid below"),
    ({"type": "alert", "symbol": "BTC", "change_pct": 5}, "needs a window"),
    ({"type": "alert", "symbol": "BTC", "change_pct": 5, "window": "1y"}, "Invalid window"),
    ({"type": "alert", "symbol": "BTC", "above": 1, "repeat": 1}, "Invalid repeat"),
    ({"type": "alert", "above": 1}, "Missing symbol"),
    ({"type": "alert", "symbols": ["BTC"], "above": 1}, "one symbol"),
    ({"type": "alert", "symbol": "NOPE", "above": 1}, "Symbol not found: NOPE"),
    ({"type": "alert", "symbol": "BTC", "source": "mtgox", "above": 1}, "Unknown source"),
    ({"type": "unsubscribe", "id": 7}, "Invalid id"),
    ({"type": "subscribe", "symbol": "BTC", "min_interval": -5}, "Invalid min_interval"),
    ({"type": "subscribe", "symbol": "BTC", "min_change_pct": 1000}, "Invalid min_change_pct"),
    ({"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "min_interval": 5}, "go with the prices channel"),
])
async def test_bad_alerts_and_filters_get_an_error_and_change_nothing(sandbox, message, fragment):
    ws = await connect()
    error = await send(ws, message)
    assert error["type"] == "error" and fragment in error["error"], error
    listed = await send(ws, {"type": "get_subscriptions"})
    assert (listed["subscriptions"], listed["alerts"]) == ([], [])


async def test_min_interval_sends_at_most_one_price_per_interval_of_the_ticks_time(sandbox):
    await store("100", T0)
    ws = await connect()
    subscribed = await send(ws, {"type": "subscribe", "symbol": "BTC", "min_interval": 10})
    assert (subscribed["min_interval"], subscribed["min_change_pct"]) == (10, 0)
    assert (await ws.receive_json_from(timeout=5))["timestamp"] == T0  # the snapshot counts as sent
    for offset in (5, 9, 10, 12, 19, 25, 26):
        ticks = await stored_and_published(f"{100 + offset}", T0 + offset * 1000)
    await sync_to_async(publish)(ticks=ticks)  # the last one again: dropped, and never sent twice
    await stored_and_published("200", T0 + 40_000)  # admitted: every earlier price has been handled
    sent = [m["timestamp"] - T0 for m in await received_through(ws, T0 + 40_000)]
    assert sent == [10_000, 25_000, 40_000]
    assert await received_until_pong(ws) == []


async def test_min_change_pct_sends_a_price_only_once_it_moved_that_much_from_the_last_one_sent(sandbox):
    await store("100", T0)
    ws = await connect()
    await send(ws, {"type": "subscribe", "symbol": "BTC", "min_change_pct": 1})
    assert (await ws.receive_json_from(timeout=5))["price"] == 100
    prices = ["100.5", "100.9", "101", "101.5", "100.2", "99.9", "200"]
    for i, price in enumerate(prices, start=1):
        await stored_and_published(price, T0 + i * 1000)
    assert [m["price"] for m in await received_through(ws, T0 + len(prices) * 1000)] == [101, 99.9, 200]
    assert await received_until_pong(ws) == []


async def test_a_filtered_and_an_unfiltered_subscriber_share_one_stream(sandbox):
    await store("100", T0)
    plain, filtered = await connect(), await connect()
    for ws, extra in ((plain, {}), (filtered, {"min_interval": 3})):
        await send(ws, {"type": "subscribe", "symbol": "BTC", **extra})
        await ws.receive_json_from(timeout=5)
    for i in range(1, 7):
        await stored_and_published(f"{100 + i}", T0 + i * 1000)
    assert [m["price"] for m in await received_through(plain, T0 + 6000)] == [101, 102, 103, 104, 105, 106]
    assert [m["price"] for m in await received_through(filtered, T0 + 6000)] == [103, 106]
    assert await received_until_pong(filtered) == []

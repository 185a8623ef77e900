"""The /ws protocol through the real ASGI application and the Redis channel layer."""

import asyncio
import json
import time
from decimal import Decimal as D

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from cryptosite.asgi import application
from market.domain.prices import Quote
from market.models import OnDemandMarket
from market.prices import record_quotes
from streaming import admission
from streaming.broadcast import publish
from tests.conftest import set_fault

pytestmark = [pytest.mark.django_db(transaction=True)]

_opened: list[WebsocketCommunicator] = []


@pytest.fixture(autouse=True)
async def _close_everything():
    """Every connection a test opened ends through the consumer's own disconnect path, and the
    channel layer's connections to Redis are closed, inside the test's event loop: nothing is
    left for the loop's teardown to cancel half-way."""
    yield
    for ws in _opened:
        try:
            await ws.disconnect(timeout=5)
        except Exception:  # already closed by the server, or the app ended: nothing to wait for
            pass
    _opened.clear()
    await asyncio.wait_for(get_channel_layer().close_pools(), timeout=10)
    await admission.close_connections()
    # The consumers' queries ran on asgiref's database thread: close its connection there, so that
    # PostgreSQL can drop the test database at the end of the run.
    await sync_to_async(connections.close_all)()


def communicator(headers=()) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(application, "/ws", headers=list(headers))
    _opened.append(ws)
    return ws


async def connect(origin: bytes | None = None) -> WebsocketCommunicator:
    ws = communicator([(b"origin", origin)] if origin else [])
    connected, _ = await ws.connect()
    assert connected
    welcome = await ws.receive_json_from()
    assert welcome["type"] == "connected" and welcome["message"] == "Connected to cryptocurrency data stream"
    assert len(welcome["client_id"]) == 36 and welcome["timestamp"]
    return ws


async def send(ws, message) -> dict:
    await ws.send_to(text_data=json.dumps(message) if not isinstance(message, str) else message)
    return await ws.receive_json_from(timeout=5)


async def store(symbol: str, price: str, source: str = "binance"):
    now = int(time.time() * 1000)
    return await sync_to_async(record_quotes)(source, [Quote(symbol, D(price), now)], now)


async def test_the_original_clients_session_works_unchanged(sandbox):
    await store("BTC", "50000.5")
    ws = await connect()
    subscribed = await send(ws, {"type": "subscribe", "symbol": "BTC"})
    assert {k: subscribed[k] for k in ("type", "symbol", "message")} == {
        "type": "subscribed", "symbol": "BTC", "message": "Subscribed to BTC updates"}
    snapshot = await ws.receive_json_from(timeout=5)
    assert snapshot["type"] == "price_update" and snapshot["price"] == 50000.5 and snapshot["source"] == "binance"

    ticks = await store("BTC", "50100.25")
    await sync_to_async(publish)(ticks=ticks)
    update = await ws.receive_json_from(timeout=5)
    assert {k: update[k] for k in ("type", "symbol", "price", "source")} == {
        "type": "price_update", "symbol": "BTC", "price": 50100.25, "source": "binance"}
    assert isinstance(update["timestamp"], int)

    pong = await send(ws, {"type": "ping"})
    assert pong["type"] == "pong" and pong["timestamp"]
    subs = await send(ws, {"type": "get_subscriptions"})
    assert subs["type"] == "subscriptions" and subs["symbols"] == ["BTC"]
    unsubscribed = await send(ws, {"type": "unsubscribe", "symbol": "BTC"})
    assert unsubscribed["type"] == "unsubscribed" and unsubscribed["message"] == "Unsubscribed from BTC updates"

    await sync_to_async(publish)(ticks=await store("BTC", "1.0"))
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()


async def test_every_server_message_carries_an_increasing_seq(sandbox):
    ws = await connect()
    seqs = [(await send(ws, {"type": "ping"}))["seq"] for _ in range(3)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    await ws.disconnect()


async def test_several_symbols_at_once_and_a_chosen_source(sandbox):
    await store("ETH", "2000", source="coinbase")
    ws = await connect()
    first = await send(ws, {"type": "subscribe", "symbols": ["eth", "SOL-USD"], "source": "Coinbase"})
    assert first["type"] == "subscribed" and first["symbol"] == "ETH" and first["source"] == "coinbase"
    kinds = set()
    while not {("subscribed", "SOL"), ("price_update", "ETH")} <= kinds:  # until both have come
        message = await ws.receive_json_from(timeout=10)
        kinds.add((message["type"], message.get("symbol")))
    await ws.send_to(text_data=json.dumps({"type": "get_subscriptions"}))
    while (subs := await ws.receive_json_from(timeout=10))["type"] != "subscriptions":
        assert subs["type"] == "price_update"  # a snapshot still on its way
    assert subs["symbols"] == ["ETH", "SOL"]
    await ws.disconnect()


async def test_the_ohlc_channel_sends_the_newest_candle_with_its_closed_flag(sandbox):
    ws = await connect()
    subscribed = await send(ws, {"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "timeframe": "1m"})
    assert subscribed["type"] == "subscribed" and subscribed["timeframe"] == "1m"
    candle = await ws.receive_json_from(timeout=10)
    assert candle["type"] == "ohlc_update" and candle["timeframe"] == "1m"
    assert candle["candle"]["closed"] is False and candle["candle"]["high"] >= candle["candle"]["low"]
    await ws.disconnect()


@pytest.mark.parametrize(
    "message,fragment",
    [("{not json", "Invalid JSON"), ({"type": "dance"}, "Unknown message type: dance"), ({"symbol": "BTC"}, "Missing message type"),
     ({"type": "subscribe"}, "Missing symbol"), ({"type": "subscribe", "symbol": "NOPE"}, "Symbol not found: NOPE"),
     ({"type": "subscribe", "symbol": "BTC", "source": "mtgox"}, "Unknown source"),
     ({"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "timeframe": "2h"}, "Invalid timeframe"), ([1, 2], "JSON object")],
)
async def test_bad_messages_get_an_error_and_the_connection_stays_open(sandbox, message, fragment):
    ws = await connect()
    error = await send(ws, message)
    assert error["type"] == "error" and fragment in error["error"]
    assert (await send(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()


async def test_an_oversized_message_gets_an_error_then_close_1009(settings):
    ws = await connect()
    error = await send(ws, json.dumps({"type": "ping", "pad": "x" * 5000}))
    assert error["type"] == "error" and "too large" in error["error"]
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1009}


async def test_a_flooding_client_gets_an_error_then_close_1008(settings):
    settings.WS_MAX_MESSAGES_PER_SECOND = 5
    ws = await connect()
    for _ in range(6):
        await ws.send_to(text_data=json.dumps({"type": "ping"}))
    messages = [await ws.receive_output(timeout=5) for _ in range(7)]
    assert json.loads(messages[5]["text"])["type"] == "error"
    assert messages[6] == {"type": "websocket.close", "code": 1008}


async def test_too_many_subscriptions_get_an_error_then_close_1008(sandbox, settings):
    settings.WS_MAX_SUBSCRIPTIONS = 2
    ws = await connect()
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "symbols": ["BTC", "ETH"]}))
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "symbol": "SOL"}))
    while (error := await ws.receive_json_from(timeout=10))["type"] != "error":  # past confirmations and snapshots
        assert error["type"] in ("subscribed", "price_update") and error["symbol"] in ("BTC", "ETH")
    assert "limit" in error["error"]
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}


async def test_browser_origins_outside_allowed_hosts_are_refused():
    ws = communicator([(b"origin", b"http://evil.example")])
    connected, _ = await ws.connect()
    assert not connected


async def test_allowed_browser_origins_and_clients_without_origin_are_accepted():
    for origin in (b"http://localhost:8000", None):
        ws = await connect(origin)
        await ws.disconnect()


async def test_a_price_the_subscriber_already_has_is_never_sent_again(sandbox):
    ticks = await store("BTC", "50000.5")
    ws = await connect()
    await send(ws, {"type": "subscribe", "symbol": "BTC"})
    snapshot = await ws.receive_json_from(timeout=5)
    assert snapshot["price"] == 50000.5
    await sync_to_async(publish)(ticks=ticks)  # the broadcast of the tick the snapshot already carried
    await asyncio.sleep(0.01)
    await sync_to_async(publish)(ticks=await store("BTC", "50001"))
    update = await ws.receive_json_from(timeout=5)
    assert update["price"] == 50001 and update["seq"] == snapshot["seq"] + 1


async def test_a_candle_subscription_the_exchange_fails_gets_an_error_and_the_connection_stays(sandbox):
    from market.models import TrackedMarket

    await sync_to_async(TrackedMarket.objects.get_or_create)(source="binance", symbol="BTC")
    set_fault(sandbox, "binance", mode="error", status=500)
    ws = await connect()
    confirmed = await send(ws, {"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "timeframe": "1m"})
    assert confirmed["type"] == "subscribed"
    error = await ws.receive_json_from(timeout=15)
    assert error["type"] == "error" and "BTC 1m" in error["error"]
    assert (await send(ws, {"type": "ping"}))["type"] == "pong"
    subs = await send(ws, {"type": "get_subscriptions"})
    assert subs["subscriptions"] == [{"symbol": "BTC", "source": "binance", "channel": "ohlc", "timeframe": "1m"}]


async def test_a_candle_subscription_with_indicators_gets_their_values_with_each_candle(sandbox):
    ws = await connect()
    subscribed = await send(ws, {"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "timeframe": "1m",
                                 "indicators": "sma:5,rsi:14,macd"})
    assert subscribed["indicators"] == ["sma_5", "rsi_14", "macd_12_26_9"]
    snapshot = await ws.receive_json_from(timeout=20)
    assert snapshot["type"] == "ohlc_update" and set(snapshot["indicators"]) == {"sma_5", "rsi_14", "macd_12_26_9"}
    assert all(v is not None for v in snapshot["indicators"].values())  # the warm-up candles were fetched
    # A candle update published by the poller or the ingest process arrives with its values.
    from market import selectors
    from market.indicators.services import latest_values
    from market.indicators.spec import parse_indicators
    from market.ticks import StoredCandle

    stored = (await sync_to_async(selectors.candles)("binance", "BTC", "1m", 0, 10**14))[-1]
    candle = StoredCandle(*stored)
    await sync_to_async(publish)(candles=[("binance", "BTC", "1m", candle)])
    update = await ws.receive_json_from(timeout=10)
    assert update["type"] == "ohlc_update" and update["candle"]["timestamp"] == candle.open_time
    expected = await sync_to_async(latest_values)("binance", "BTC", "1m", candle.open_time,
                                                  parse_indicators("sma:5,rsi:14,macd"))
    assert update["indicators"] == expected
    listed = await send(ws, {"type": "get_subscriptions"})
    assert listed["subscriptions"][0]["indicators"] == ["sma_5", "rsi_14", "macd_12_26_9"]
    await ws.disconnect()


@pytest.mark.parametrize("message, fragment", [
    ({"type": "subscribe", "symbol": "BTC", "channel": "ohlc", "indicators": "smaa:2"}, "Unknown indicator: 'smaa'"),
    ({"type": "subscribe", "symbol": "BTC", "indicators": "sma:5"}, "indicators go with the ohlc channel"),
])
async def test_bad_indicators_are_an_error_naming_them(sandbox, message, fragment):
    ws = await connect()
    error = await send(ws, message)
    assert error["type"] == "error" and fragment in error["error"]
    await ws.disconnect()


async def test_a_book_subscription_gets_a_snapshot_then_each_change_at_its_depth(sandbox):
    from market.depth.services import watched
    from market.tasks import poll_books

    ws = await connect()
    subscribed = await send(ws, {"type": "subscribe", "symbol": "BTC", "channel": "book", "source": "binance", "depth": 5})
    assert subscribed["type"] == "subscribed" and subscribed["channel"] == "book" and subscribed["depth"] == 5
    snapshot = await ws.receive_json_from(timeout=10)
    assert snapshot["type"] == "book" and len(snapshot["bids"]) == len(snapshot["asks"]) == 5
    assert await sync_to_async(watched)() == [("binance", "BTC")]  # fetched while watched, and only then
    await asyncio.sleep(1.1)  # the sandbox's book moves every second (and the cached one lapses)
    assert await sync_to_async(poll_books)() == 1
    update = await ws.receive_json_from(timeout=10)
    assert update["type"] == "book" and len(update["bids"]) == 5 and update["bids"] != snapshot["bids"]
    assert "seq" in update
    composite = await send(ws, {"type": "subscribe", "symbol": "ETH", "channel": "book", "source": "composite", "depth": 3})
    assert composite["source"] == "composite"
    book = await ws.receive_json_from(timeout=10)
    assert book["source"] == "composite" and all(len(level) == 3 for level in book["bids"])
    await ws.disconnect()


@pytest.mark.parametrize("message, fragment", [
    ({"type": "subscribe", "symbol": "BTC", "channel": "book", "depth": 0}, "Invalid depth"),
    ({"type": "subscribe", "symbol": "BTC", "channel": "book", "depth": 101}, "Invalid depth"),
    ({"type": "subscribe", "symbol": "BTC", "source": "composite"}, "Unknown source"),
])
async def test_bad_book_subscriptions_are_an_error(sandbox, message, fragment):
    ws = await connect()
    error = await send(ws, message)
    assert error["type"] == "error" and fragment in error["error"], error
    await ws.disconnect()


async def test_a_connection_subscribes_to_at_most_its_addresss_share_of_untracked_markets(sandbox, settings):
    """UNTRACKED_MARKETS_PER_CLIENT counts what an address first asked for over /ws as over REST:
    past it, a new untracked market is an error and the connection goes on; another address is
    not held back by it."""
    settings.UNTRACKED_MARKETS_PER_CLIENT = 1
    first, other = communicator(), communicator()
    first.scope["client"], other.scope["client"] = ("198.51.100.7", 40000), ("198.51.100.8", 40000)
    for ws in (first, other):
        assert (await ws.connect())[0] and (await ws.receive_json_from())["type"] == "connected"
    assert (await send(first, {"type": "subscribe", "symbol": "DOGE"}))["type"] == "subscribed"
    assert (await first.receive_json_from(timeout=5))["type"] == "price_update"  # its price, fetched and kept
    refused = await send(first, {"type": "subscribe", "symbol": "XRP"})
    assert refused["type"] == "error" and "UNTRACKED_MARKETS_PER_CLIENT" in refused["error"]
    assert (await send(other, {"type": "subscribe", "symbol": "XRP"}))["type"] == "subscribed"
    owners = await sync_to_async(lambda: dict(OnDemandMarket.objects.values_list("symbol", "admitted_for")))()
    assert owners == {"DOGE": "198.51.100.7", "XRP": "198.51.100.8"}

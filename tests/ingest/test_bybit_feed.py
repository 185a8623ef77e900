"""Bybit's live feed through ccxt.pro's bybit (ingest.ccxt_connection) against the sandbox's Bybit
public v5 spot stream (sandbox.bybit_feed) and REST API, the real database and Redis, in this process:
trades are stored and published at the exchange's exact prices; a quiet market is probed with ccxt's
own ping and stays live; markets added or removed are subscribed and unsubscribed. And the stream as
Bybit documents it, spoken by hand: a bad topic is refused with Bybit's error shape and changes
nothing, ccxt.pro rejects the subscription on that answer, a ping is answered with the spot pong."""

import asyncio
import json
from decimal import Decimal as D

import pytest
from ccxt.base.errors import ExchangeError
from websockets.asyncio.client import connect

from market import aio
from market.exchanges import get_exchange
from market.feeds import CcxtFeed
from market.models import TrackedMarket
from market.selectors import now_ms
from sandbox import simulation as sim
from serving import ccxt_client
from tests.ingest import ccxt_venues
from tests.ingest.ccxt_venues import check_exact_prices, db, serve, subscriptions
from tests.ingest.test_exchange import Running, track, until

PATH = "/bybit/v5/public/spot"


@pytest.fixture
def bybit_feed(sandbox, settings):
    yield from serve(sandbox, settings, "bybit", PATH, 0.1)


@pytest.fixture
def quiet_bybit_feed(sandbox, settings):
    yield from serve(sandbox, settings, "bybit", PATH, 3600.0)  # no market ever trades


def stored(symbol: str) -> list[tuple[int, D]]:
    return ccxt_venues.stored("bybit", symbol)


def subscribed(server) -> set[str]:
    """The symbols the sandbox's Bybit connections are subscribed to (in any topic)."""
    return {topic.partition(".")[2] for topic in subscriptions(server, "bybit")}


# --- through the ingest ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_bybit_prices_are_stored_and_published_at_the_exchanges_exact_prices(bybit_feed, sandbox, watch):
    # A trade's at its own time; the resync's REST ticker has no time on Bybit (ccxt's timestamp is
    # None), so its tick carries the moment it was received, after the price was read: up to 1 s before.
    await check_exact_prices("bybit", sandbox, watch, lambda: subscribed(bybit_feed), {"BTCUSDT", "DOGEUSDT"},
                             range(-1000, 20))


@pytest.mark.django_db(transaction=True)
async def test_a_quiet_bybit_market_is_probed_with_ccxts_ping_and_stays_live(quiet_bybit_feed, sandbox):
    """No trade for three poll intervals: ccxt's own ping ({"op": "ping"}) is answered with the spot
    pong, and the feed stays the live path on the same connection."""
    faults = sandbox.RequestHandlerClass.feed_faults
    await db(track, "bybit", "BTC")
    async with Running("bybit") as exchange:
        await until(lambda: exchange.live_since is not None)
        since, opened = exchange.live_since, faults.connections.get("bybit")
        await asyncio.sleep(3.5)
        assert exchange.live_since == since and faults.connections.get("bybit") == opened
        assert now_ms() - exchange.seen_ms < 2 * 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("watch", ["watchTradesForSymbols", "watchTickers"], indirect=True)
async def test_bybit_markets_added_or_removed_are_subscribed_and_unsubscribed(bybit_feed, watch):
    await db(track, "bybit", "BTC", "ETH")
    async with Running("bybit"):
        await until(lambda: stored("ETH"))
        assert subscribed(bybit_feed) == {"BTCUSDT", "ETHUSDT"}
        await db(track, "bybit", "SOL")
        await db(TrackedMarket.objects.filter(source="bybit", symbol="ETH").delete)
        await until(lambda: subscribed(bybit_feed) == {"BTCUSDT", "SOLUSDT"}, 5)
        await until(lambda: len(stored("SOL")) >= 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("watch", ["watchTradesForSymbols", "watchTickers"], indirect=True)
async def test_more_bybit_markets_than_one_request_takes_are_subscribed_in_batches(bybit_feed, watch):
    """Bybit's spot stream takes 10 topics a request: 12 markets tracked together are subscribed in
    two requests, none refused, and every one of them is stored."""
    symbols = list(sim.SYMBOLS)[:12]
    await db(track, "bybit", *symbols)
    async with Running("bybit"):
        await until(lambda: all(stored(symbol) for symbol in symbols), 15)
        assert subscribed(bybit_feed) == {f"{symbol}USDT" for symbol in symbols}


# --- the stream as Bybit documents it ---------------------------------------------------------------
async def exchange_frames(ws, message: dict) -> dict:
    """Send a request; the first answer that is not a push."""
    await ws.send(json.dumps(message))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "topic" not in frame:
            return frame


async def test_a_bad_topic_is_refused_with_bybits_error_and_changes_nothing(bybit_feed, sandbox):
    async with connect(f"ws://127.0.0.1:{bybit_feed.port}{PATH}") as ws:
        ok = await exchange_frames(ws, {"req_id": "1", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        assert ok == {"success": True, "ret_msg": "subscribe", "conn_id": ok["conn_id"], "req_id": "1", "op": "subscribe"}
        for bad in (["publicTrade.ETHUSDT", "publicTrade.NOPEUSDT"], ["orderbook.1.BTCUSDT"], ["publicTrade.BTC-USDT"]):
            refused = await exchange_frames(ws, {"req_id": "2", "op": "subscribe", "args": bad})
            named = ",".join(b for b in bad if b != "publicTrade.ETHUSDT")
            assert refused == {"success": False, "ret_msg": f"Invalid symbol :[{named}]", "conn_id": ok["conn_id"],
                               "req_id": "2", "op": "subscribe"}
            assert subscribed(bybit_feed) == {"BTCUSDT"}
        eleven = [f"publicTrade.{symbol}USDT" for symbol in list(sim.SYMBOLS)[1:12]]
        too_many = await exchange_frames(ws, {"req_id": "6", "op": "subscribe", "args": eleven})
        assert too_many == {"success": False, "ret_msg": "args size >10", "conn_id": ok["conn_id"], "req_id": "6",
                            "op": "subscribe"}
        assert subscribed(bybit_feed) == {"BTCUSDT"}
        nonsense = await exchange_frames(ws, {"req_id": "3", "op": "subscribe"})
        assert nonsense["success"] is False and nonsense["ret_msg"] == "error:invalid op"
        pong = await exchange_frames(ws, {"req_id": "4", "op": "ping"})
        assert pong == {"success": True, "ret_msg": "pong", "conn_id": ok["conn_id"], "op": "ping"}
        off = await exchange_frames(ws, {"req_id": "5", "op": "unsubscribe", "args": ["publicTrade.BTCUSDT"]})
        assert off == {"success": True, "ret_msg": "unsubscribe", "conn_id": ok["conn_id"], "req_id": "5",
                       "op": "unsubscribe"}
        assert subscribed(bybit_feed) == set()


async def test_trades_and_tickers_are_pushed_in_bybits_spot_shape_at_the_rest_apis_prices(bybit_feed, sandbox):
    market = sandbox.RequestHandlerClass.market
    async with connect(f"ws://127.0.0.1:{bybit_feed.port}{PATH}") as ws:
        await ws.send(json.dumps({"req_id": "1", "op": "subscribe", "args": ["publicTrade.BTCUSDT", "tickers.BTCUSDT"]}))
        seen: dict[str, dict] = {}
        while len(seen) < 2:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "topic" in frame:
                seen[frame["topic"]] = frame
    trade = seen["publicTrade.BTCUSDT"]
    assert trade["type"] == "snapshot" and isinstance(trade["ts"], int)
    [row] = trade["data"]
    assert set(row) == {"T", "s", "S", "v", "p", "i", "BT"} and row["s"] == "BTCUSDT" and row["S"] in ("Buy", "Sell")
    assert isinstance(row["i"], str) and row["BT"] is False and row["T"] == trade["ts"]
    assert D(row["p"]) == market.scale("bybit", "BTC", sim.price("BTC", row["T"]))
    ticker = seen["tickers.BTCUSDT"]
    assert ticker["type"] == "snapshot" and isinstance(ticker["cs"], int)
    assert set(ticker["data"]) == {"symbol", "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h", "volume24h",
                                   "turnover24h", "price24hPcnt", "usdIndexPrice"}
    assert D(ticker["data"]["lowPrice24h"]) <= D(ticker["data"]["lastPrice"]) <= D(ticker["data"]["highPrice24h"])


async def test_ccxt_pro_rejects_a_refused_subscription_and_its_ping_is_answered(bybit_feed, sandbox, settings):
    """ccxt.pro's bybit reads the sandbox's answers as Bybit's: a refusal fails the watch with
    Bybit's message (ExchangeError), the pong to its ping is heard (client.lastPong)."""
    adapter = get_exchange("bybit")
    await asyncio.to_thread(lambda: aio.run(adapter.listing(refresh=True)))
    client = ccxt_client.pro_client("bybit", 10)
    client.urls["api"]["ws"] = CcxtFeed(settings.EXCHANGE_FEED_URLS["bybit"], "bybit").ws_urls(client.urls["api"]["ws"])
    client.set_markets(adapter.client.markets, adapter.client.currencies or None)
    try:
        trades = await asyncio.wait_for(client.watch_trades_for_symbols(["BTC/USDT"]), 5)
        assert trades[-1]["symbol"] == "BTC/USDT" and trades[-1]["price"] is not None
        url = client.urls["api"]["ws"]["public"]["spot"]
        with pytest.raises(ExchangeError, match=r"Invalid symbol :\[publicTrade.NOPEUSDT\]"):
            await asyncio.wait_for(client.watch_topics(url, ["trade:NOPE/USDT"], ["publicTrade.NOPEUSDT"]), 5)
        ws = client.clients[url]
        ws.lastPong = None
        assert await ccxt_client.ping(client) == []
        await until(lambda: ws.lastPong is not None, 5, "pong")
    finally:
        await client.close()

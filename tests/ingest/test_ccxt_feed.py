"""The live feed of an exchange ccxt serves (ingest.ccxt_connection, through ccxt.pro's okx) against
the sandbox's OKX WebSocket v5 and REST API, the real database and Redis, in this process: trades
are stored and published at the exchange's exact prices; a dropped or stalled feed is reported down
and comes back by itself; markets added or removed are subscribed and unsubscribed. And the pure
parts (market.feeds.viaccxt): URLs, the watch chosen, ccxt's unified answers read."""

import asyncio
from decimal import Decimal as D

import pytest

from ingest.ccxt_connection import CcxtConnection
from market import selectors
from market.feeds import CcxtFeed, get_feed
from market.models import TrackedMarket
from market.selectors import now_ms
from tests.ingest import ccxt_venues
from tests.ingest.ccxt_venues import check_exact_prices, db, serve, subscriptions
from tests.ingest.test_exchange import Running, track, until

OKX_WS = "wss://ws.okx.com:443/ws/v5"
OKX_PATH = "/okx/ws/v5/public"


@pytest.fixture
def okx_feed(sandbox, settings):
    yield from serve(sandbox, settings, "okx", OKX_PATH, 0.1)


@pytest.fixture
def quiet_okx_feed(sandbox, settings):
    yield from serve(sandbox, settings, "okx", OKX_PATH, 3600.0)  # no market ever trades (its first round is before any client)


def stored(symbol: str) -> list[tuple[int, D]]:
    return ccxt_venues.stored("okx", symbol)


def subscribed(server) -> set[str]:
    """The instIds the sandbox's OKX connections are subscribed to (in any channel)."""
    return {key.rpartition(":")[2] for key in subscriptions(server, "okx")}


# --- against the sandbox ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_okx_prices_are_stored_and_published_at_the_exchanges_exact_prices(okx_feed, sandbox, watch):
    # At the moment of the price, or a few ms after (the REST ticker of the resync reads the clock
    # again after its timestamp).
    await check_exact_prices("okx", sandbox, watch, lambda: subscribed(okx_feed), {"BTC-USDT", "DOGE-USDT"}, range(20))


@pytest.mark.django_db(transaction=True)
async def test_a_dropped_feed_is_reported_down_and_reconnects_by_itself(okx_feed, sandbox):
    faults = sandbox.RequestHandlerClass.feed_faults
    await db(track, "okx", "BTC")
    async with Running("okx") as exchange:
        await until(lambda: "okx" in selectors.live_feeds())
        opened = faults.connections.get("okx", 0)
        faults.set("okx", "drop")
        await until(lambda: exchange.live_since is None, 5)
        assert "connection failed" in exchange.detail or "closed" in exchange.detail, exchange.detail
        await asyncio.sleep(1.5)  # cut again as it reconnects
        faults.clear("okx")
        await until(lambda: exchange.live_since is not None, 10)
        assert faults.connections.get("okx", 0) > opened
        count = len(await db(stored, "BTC"))
        await until(lambda: len(stored("BTC")) >= count + 2)
        await until(lambda: "okx" in selectors.live_feeds(), 5)


@pytest.mark.django_db(transaction=True)
async def test_a_stalled_feed_is_probed_then_dropped_and_reconnects(okx_feed, sandbox):
    faults = sandbox.RequestHandlerClass.feed_faults
    await db(track, "okx", "BTC")
    async with Running("okx") as exchange:
        await until(lambda: exchange.live_since is not None)
        faults.set("okx", "stall")  # nothing sent, the probe ("ping") unanswered
        await until(lambda: exchange.live_since is None, 5)
        assert "no message for" in exchange.detail
        faults.clear("okx")
        await until(lambda: exchange.live_since is not None, 10)


@pytest.mark.django_db(transaction=True)
async def test_a_quiet_market_on_a_working_connection_stays_live(quiet_okx_feed, sandbox):
    """No trade for three poll intervals: the feed is probed with ccxt's own ping (OKX's "ping"),
    answers "pong", and stays the live path, on the same connection."""
    faults = sandbox.RequestHandlerClass.feed_faults
    await db(track, "okx", "BTC")
    async with Running("okx") as exchange:
        await until(lambda: exchange.live_since is not None)  # the subscription's answer, the resync
        since, opened = exchange.live_since, faults.connections.get("okx")
        await asyncio.sleep(3.5)
        assert exchange.live_since == since and faults.connections.get("okx") == opened
        assert now_ms() - exchange.seen_ms < 2 * 1000  # heard within two intervals: still the live path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("watch", ["watchTradesForSymbols", "watchTrades", "watchTickers"], indirect=True)
async def test_markets_added_or_removed_are_subscribed_and_unsubscribed(okx_feed, watch):
    await db(track, "okx", "BTC", "ETH")
    async with Running("okx"):
        await until(lambda: stored("ETH"))
        assert subscribed(okx_feed) == {"BTC-USDT", "ETH-USDT"}
        await db(track, "okx", "SOL")
        await db(TrackedMarket.objects.filter(source="okx", symbol="ETH").delete)
        await until(lambda: subscribed(okx_feed) == {"BTC-USDT", "SOL-USDT"}, 5)
        eth = len(await db(stored, "ETH"))
        await until(lambda: len(stored("SOL")) >= 2 and len(stored("BTC")) >= 4)
        assert len(await db(stored, "ETH")) <= eth + 1  # at most one in flight as it went


class PolledOwner:
    def __init__(self, name: str):
        self.feed, self.detail, self.downs = CcxtFeed("", name), "", []

    def connection_down(self, detail: str) -> None:
        self.downs.append(detail)


async def test_an_exchange_with_no_live_feed_in_ccxt_is_left_to_the_poller():
    owner = PolledOwner("bitbank")  # in ccxt, not in ccxt.pro
    conn = CcxtConnection(owner, 0)
    conn.markets = {"BTC/JPY": "BTC"}
    await asyncio.wait_for(conn.run(), 10)
    assert owner.downs == ["bitbank has no live feed in ccxt: polled"] and not conn.live


# --- the pure parts -----------------------------------------------------------------------------
def test_an_exchange_without_a_native_feed_gets_ccxts(settings):
    settings.EXCHANGE_FEED_URLS = {"okx": "ws://127.0.0.1:9/okx/ws/v5/public"}
    feed = get_feed("okx")
    assert isinstance(feed, CcxtFeed) and feed.name == "okx" and not feed.has_candles
    assert feed.market_id("BTC", "BTC/USDT") == "BTC/USDT" and feed.streams_per_market() == 1


def test_the_feed_url_takes_the_place_of_ccxts_host_and_keeps_the_path_ccxt_adds():
    assert CcxtFeed("ws://127.0.0.1:9/okx/ws/v5/public", "okx").ws_urls(OKX_WS) == "ws://127.0.0.1:9/okx/ws/v5"
    assert CcxtFeed("", "okx").ws_urls(OKX_WS) == OKX_WS
    bybit = {"public": {"spot": "wss://stream.{hostname}/v5/public/spot"}, "private": "wss://stream.{hostname}/v5/private"}
    assert CcxtFeed("ws://h:1/bybit/v5/public/spot").ws_urls(bybit) == {
        "public": {"spot": "ws://h:1/bybit/v5/public/spot"}, "private": "ws://h:1/bybit/v5/private"}
    assert CcxtFeed("ws://proxy:1/base").ws_urls(bybit)["public"]["spot"] == "ws://proxy:1/base/v5/public/spot"


def test_the_watch_is_trades_for_many_markets_else_per_market_else_tickers():
    feed = CcxtFeed("", "x")
    assert feed.watch_method({"watchTradesForSymbols": True, "watchTrades": True}) == "watchTradesForSymbols"
    assert feed.watch_method({"watchTrades": "emulated", "watchTickers": True}) == "watchTrades"
    assert feed.watch_method({"watchTicker": True}) == "watchTicker"
    assert feed.watch_method({"watchOrderBook": True, "watchTrades": False}) is None


def test_one_subscription_request_carries_no_more_markets_than_the_exchange_takes():
    markets = [f"M{n}/USDT" for n in range(25)]
    assert [len(b) for b in CcxtFeed("", "bybit").subscribe_batches(markets)] == [10, 10, 5]  # spot: 10 a request
    assert CcxtFeed("", "okx").subscribe_batches(markets) == [markets]
    assert CcxtFeed("", "bybit").subscribe_batches([]) == []


def test_ccxts_unified_trades_and_tickers_become_trades_with_the_printed_digits():
    feed, markets = CcxtFeed("", "okx"), {"BTC/USDT": "BTC"}
    trades = [{"symbol": "BTC/USDT", "price": "42219.90", "timestamp": 1630048897897, "id": "130639474"},
              {"symbol": "ETH/USDT", "price": "3000.1", "timestamp": 1630048897898, "id": "2"}]
    [trade] = feed.parse(trades, markets, 5)
    assert (trade.symbol, trade.timestamp_ms) == ("BTC", 1630048897897) and str(trade.price) == "42219.90"
    ticker = {"symbol": "BTC/USDT", "last": "0.000022", "timestamp": None}
    assert [(t.price, t.timestamp_ms) for t in feed.parse([ticker], markets, 7)] == [(D("0.000022"), 7)]
    assert feed.parse([{**ticker, "last": None}], markets, 7) == []

"""The live feeds in the real stack (`make demo`: sandbox feeds, the ingest process, the poller as
fallback): each fault switch fails the exchange over to the REST poller within two poll intervals
and back to its feed once the feed recovers, with no tick stored twice."""

import asyncio
import json
import sqlite3
import time

import pytest
import websockets

from tests.e2e.conftest import RunningStack, until

pytestmark = pytest.mark.e2e

INTERVAL = 2.0
EXCHANGES = ("binance", "coinbase", "kraken")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("feeds"), POLL_INTERVAL=str(INTERVAL), EXCHANGES=",".join(EXCHANGES),
                           FEEDS=",".join(EXCHANGES), FEED_RECONNECT_MAX_SECONDS="2", TICK_MIN_INTERVAL="1")
    try:
        running.wait_healthy()
        until(lambda: all(path(running, e) == "feed" for e in EXCHANGES), 60, "every feed live")
        yield running
    finally:
        running.stop()


def path(stack, exchange: str) -> str:
    return stack.http.get("/health").json()["sources"][exchange]["path"]


def rest_requests(stack, exchange: str) -> int:
    """Requests for the latest prices made to the exchange's REST API (the poller's, a resync's)."""
    return stack.sandbox("GET", "/_sandbox/stats").json()["price_requests"].get(exchange, 0)


def stored(stack) -> dict[tuple[str, str], list[int]]:
    """Every stored tick's timestamp, per market, in the order they were stored."""
    db_path = stack.env["DEMO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute("SELECT source, symbol, CAST(strftime('%s', timestamp) AS INTEGER) * 1000"
                          " + CAST(substr(strftime('%f', timestamp), 4) AS INTEGER), id FROM market_pricetick"
                          " ORDER BY id").fetchall()
    out: dict[tuple[str, str], list[int]] = {}
    for source, symbol, stamp, _id in rows:
        out.setdefault((source, symbol), []).append(stamp)
    return out


def assert_each_stored_once(stack) -> None:
    """No price stored twice. Not necessarily in time order: a feed's price published while the
    poller stored a newer one (its REST answer, at start-up or a failover) is stored in its place
    in time after it (market.prices.record_quotes)."""
    for market, stamps in stored(stack).items():
        assert len(set(stamps)) == len(stamps), f"{market}: a tick stored twice"


def test_every_exchange_is_fed_live_with_a_price_a_second(stack):
    health = stack.http.get("/health").json()
    for exchange in EXCHANGES:
        assert health["sources"][exchange]["path"] == "feed" and health["sources"][exchange]["path_since_utc"]
    before = stored(stack)
    time.sleep(5)
    after = stored(stack)
    for market, stamps in after.items():
        # The poller at 2 s would store at most three in 5 s; the feeds store one a second.
        assert len(stamps) - len(before.get(market, [])) >= 4, market
    assert_each_stored_once(stack)


def test_a_subscriber_gets_every_stored_feed_price_in_order(stack):
    async def listen():
        async with websockets.connect(f"ws://127.0.0.1:{stack.port}/ws") as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "subscribe", "symbol": "ETH", "source": "kraken"}))
            stamps = []
            while len(stamps) < 5:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] in ("price", "price_update"):
                    stamps.append(message["timestamp"])
            return stamps

    stamps = asyncio.run(listen())
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@pytest.mark.parametrize("exchange, mode", [("binance", "drop"), ("coinbase", "stall"), ("kraken", "garbage")])
def test_a_feed_fault_fails_over_to_polling_and_back(stack, exchange, mode):
    assert path(stack, exchange) == "feed"
    stack.sandbox("POST", "/_sandbox/feed-faults", json={"exchange": exchange, "mode": mode})
    try:
        until(lambda: path(stack, exchange) == "poll", 2 * INTERVAL + 1, f"{exchange} {mode}: the poller taking over")
        polled = rest_requests(stack, exchange)
        count = sum(len(s) for m, s in stored(stack).items() if m[0] == exchange)
        until(lambda: rest_requests(stack, exchange) > polled + 1, 3 * INTERVAL, "the poller polling")
        until(lambda: sum(len(s) for m, s in stored(stack).items() if m[0] == exchange) > count, 3 * INTERVAL,
              "prices stored by the poller")
        assert stack.http.get("/health").json()["sources"][exchange]["feed_detail"]
    finally:
        stack.sandbox("DELETE", f"/_sandbox/feed-faults?exchange={exchange}")
    until(lambda: path(stack, exchange) == "feed", 20, f"{exchange}: back to the feed")
    # The poller stands down: only stray markets (none here) are polled while the feed is live.
    time.sleep(INTERVAL)
    quiet = rest_requests(stack, exchange)
    time.sleep(2 * INTERVAL)
    assert rest_requests(stack, exchange) - quiet == 0
    assert_each_stored_once(stack)


def test_a_skipped_trade_id_is_resynced_from_the_rest_api_while_the_feed_stays_live(stack):
    before = rest_requests(stack, "binance")
    stack.sandbox("POST", "/_sandbox/feed-faults", json={"exchange": "binance", "mode": "skip"})
    until(lambda: rest_requests(stack, "binance") > before, 10, "a REST resync after the gap")
    assert path(stack, "binance") == "feed"
    assert_each_stored_once(stack)

"""`make demo`'s six sources in the real stack: binance, coinbase and kraken natively, okx and bybit
through ccxt (their live feeds through ccxt.pro), and the CoinGecko aggregator, all against the
sandbox: prices, candles in all eight timeframes and books from each, over REST and /ws."""

import asyncio
import json
import time

import pytest
import websockets

from tests.e2e.conftest import RunningStack, until

pytestmark = pytest.mark.e2e

SOURCES = ("binance", "coinbase", "kraken", "okx", "bybit", "coingecko")
FEEDS = ("binance", "coinbase", "kraken", "okx", "bybit")
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # The demo's sources and feeds as `make demo` has them (its defaults: the stack fixture pins
    # EXCHANGES and FEEDS, so they are named here). A CoinGecko Demo key paces its calls at 2.5 s
    # instead of the keyless 6 s, which keeps the start short; the sandbox takes any key.
    running = RunningStack(tmp_path_factory.mktemp("breadth"), EXCHANGES=",".join(SOURCES), FEEDS=",".join(FEEDS),
                           COINGECKO_API_KEY="sandbox-demo-key", POLL_INTERVAL="2")
    try:
        running.wait_healthy(180)
        yield running
    finally:
        running.stop()


def test_every_source_serves_prices_named_by_its_id(stack):
    health = stack.http.get("/health").json()["sources"]
    assert set(health) == set(SOURCES)
    assert all(not health[s]["stale"] for s in SOURCES), health
    assert health["coingecko"]["kind"] == "aggregator" and health["okx"]["via"] == "ccxt"
    for source in SOURCES:
        body = stack.http.get("/api/market/price", params={"symbol": "BTC", "source": source}).json()
        assert body["source"] == source and body["price"] > 0, body
    composite = stack.http.get("/api/market/price", params={"symbol": "BTC", "source": "composite"}).json()
    assert "coingecko" not in composite["sources"] and {"okx", "bybit"} <= set(composite["sources"])


@pytest.mark.parametrize("source", ["okx", "bybit"])
def test_okx_and_bybit_are_fed_live_through_ccxt_pro(stack, source):
    until(lambda: stack.http.get("/health").json()["sources"][source]["path"] == "feed", 60, f"{source}'s feed live")


@pytest.mark.parametrize("source", SOURCES)
def test_candles_in_all_eight_timeframes(stack, source):
    for timeframe in TIMEFRAMES:
        response = stack.http.get("/api/market/ohlc", params={"symbol": "ETH", "source": source, "timeframe": timeframe,
                                                               "limit": 3})
        assert response.status_code == 200, (source, timeframe, response.text)
        assert response.json()["ohlc"], (source, timeframe)


@pytest.mark.parametrize("source", SOURCES)
def test_books_from_each_exchange_and_a_clear_answer_from_the_aggregator(stack, source):
    response = stack.http.get("/api/market/orderbook", params={"symbol": "BTC", "source": source, "depth": 5})
    if source == "coingecko":
        assert response.status_code == 404 and "order book" in response.json()["error"]
        return
    assert response.status_code == 200, response.text
    book = response.json()
    assert len(book["bids"]) == len(book["asks"]) == 5 and book["bids"][0][0] < book["asks"][0][0]


def test_a_ccxt_exchanges_prices_stream_over_ws(stack):
    async def first_update():
        async with websockets.connect(f"ws://127.0.0.1:{stack.port}/ws", open_timeout=10) as ws:
            await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC", "source": "okx"}))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message.get("type") == "price_update" and message.get("source") == "okx":
                    return message
        return None

    message = asyncio.run(first_update())
    assert message is not None and message["symbol"] == "BTC" and message["price"] > 0

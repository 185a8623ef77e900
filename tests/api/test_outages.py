"""A Redis that goes away and comes back, under the served application (edge and Django): the
endpoints answer from the database or with the contract's 503, never a 500, /health names what is
down, and everything recovers by itself, rate limit included."""

import time
from decimal import Decimal

import httpx
import pytest

from core import threads
from cryptosite import edge
from cryptosite.asgi import application
from market.candles import upsert_candles
from market.domain.prices import Quote
from market.models import TrackedMarket
from market.prices import record_quotes
from sandbox import simulation as sim
from tests.conftest import OwnRedis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(settings, tmp_path):
    """Cache, channel layer and broker on a Redis of this test's own."""
    redis = OwnRedis(tmp_path)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis.url}}
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{**layer["CONFIG"]["hosts"][0], "address": redis.url}]}}}
    settings.CELERY_BROKER_URL = settings.REDIS_URL = redis.url
    yield redis
    redis.stop()


async def test_endpoints_answer_while_redis_is_down_and_recover_when_it_returns(own_redis, settings):
    from asgiref.sync import sync_to_async

    settings.RATE_LIMIT = "1000/d"

    def seed():
        TrackedMarket.objects.get_or_create(source="binance", symbol="BTC")
        now = int(time.time() * 1000)
        record_quotes("binance", [Quote("BTC", Decimal("50000.5"), now)], now)
        upsert_candles("binance", "BTC", "1h", sim.series("BTC", "1h", now - 299 * 3_600_000, now, now))

    await sync_to_async(seed)()
    transport = httpx.ASGITransport(app=application, client=("198.51.100.8", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get("/api/market/price?symbol=BTC")).status_code == 200
        own_redis.stop()
        try:
            health = await client.get("/health")
            assert health.status_code == 503
            body = health.json()
            assert body["status"] == "down" and body["checks"]["channel_layer"] == "down" and body["checks"]["broker"] == "down"
            assert body["checks"]["database"] == "ok"
            # Served from the database, not counted (the rate limit fails open while Redis is down).
            price = await client.get("/api/market/price?symbol=BTC")
            assert price.status_code == 200 and price.json()["price"] == 50000.5
            assert "x-ratelimit-remaining" not in price.headers
            prices = await client.get("/prices")
            assert prices.status_code == 200 and prices.json()["Binance"]["BTC"]["price"] == 50000.5
            # Widgets show their (stale) data, not an error page.
            board = await client.get("/widgets/prices/?symbols=BTC")
            assert board.status_code == 200 and "50000.5" in board.text
            chart = await client.get("/widgets/chart/?symbol=BTC&timeframe=1h")
            assert chart.status_code == 200
            for path in ("/coins", "/history?symbol=BTC&source=binance", "/api/market/ohlc?symbol=BTC&limit=2"):
                response = await client.get(path)
                # 503 when what it needs is gone (Redis, or here the exchange: no sandbox in this test)
                assert response.status_code in (200, 503), (path, response.status_code)
                assert response.status_code == 200 or set(response.json()) >= {"error", "timestamp"}
        finally:
            own_redis.start()
        # Back: counted again, documents again, no restart of anything.
        deadline = time.monotonic() + 10
        while "x-ratelimit-remaining" not in (response := await client.get("/api/market/price?symbol=BTC")).headers:
            assert time.monotonic() < deadline, "the rate limit did not come back"
        assert response.status_code == 200
        assert (await client.get("/health")).json()["checks"]["channel_layer"] == "ok"
    await edge.close_connections()
    await sync_to_async(threads.close_connections)()

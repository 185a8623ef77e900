"""/metrics through the served application: requests counted per endpoint and status, the newest
price's age per market and the queue depth read when scraped, and only for this machine unless a
token is set."""

import re
import time
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async

from cryptosite import edge
from cryptosite.asgi import application
from market.domain.prices import Quote
from market.models import TrackedMarket
from market.prices import record_quotes

pytestmark = pytest.mark.django_db(transaction=True)


def client_from(ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application, client=(ip, 5000)), base_url="http://localhost")


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_requests_prices_and_queue_are_measured_for_this_machine(settings):
    def seed():
        TrackedMarket.objects.get_or_create(source="binance", symbol="BTC")
        now = int(time.time() * 1000) - 2000
        record_quotes("binance", [Quote("BTC", Decimal("50000.5"), now)], now)

    await sync_to_async(seed)()
    price = 'cryptosite_http_requests_total{endpoint="/api/market/price",method="GET",status="200"}'
    bad = 'cryptosite_http_requests_total{endpoint="/api/market/ohlc",method="GET",status="400"}'
    async with client_from("127.0.0.1") as local:
        before = (await local.get("/metrics")).text
        assert (await local.get("/api/market/price?symbol=BTC")).status_code == 200  # answered by the edge
        assert (await local.get("/api/market/ohlc?symbol=BTC&timeframe=2h")).status_code == 400  # by Django
        response = await local.get("/metrics")
    await edge.close_connections()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, price) == value(before, price) + 1 and value(text, bad) == value(before, bad) + 1
    assert 'cryptosite_http_request_duration_seconds_bucket{endpoint="/api/market/price",le="0.5"}' in text
    assert 1.5 < value(text, 'cryptosite_price_age_seconds{source="binance",symbol="BTC"}') < 60
    assert "cryptosite_websocket_connections " in text


async def test_each_celery_queue_has_its_depth(settings):
    import redis

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    webhooks = f"{prefix}{settings.ALERT_WEBHOOK_QUEUE}"
    broker.rpush(webhooks, "a", "b", "c")  # three deliveries waiting, no poll
    try:
        async with client_from("127.0.0.1") as local:
            text = (await local.get("/metrics")).text
    finally:
        broker.delete(webhooks)
        broker.close()
    assert value(text, 'cryptosite_celery_queue_depth{queue="webhooks"}') == 3
    assert 'cryptosite_celery_queue_depth{queue="tasks"} 0.0' in text


async def test_other_machines_need_the_token(settings):
    async with client_from("198.51.100.7") as remote:
        refused = await remote.get("/metrics")
        assert refused.status_code == 403 and set(refused.json()) >= {"error", "timestamp"}
        settings.METRICS_TOKEN = "s3cret-token"
        assert (await remote.get("/metrics")).status_code == 401
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})).status_code == 200

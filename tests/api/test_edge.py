"""The hot reads through the served ASGI application (cryptosite.asgi): the edge answers them from
the rendered documents with exactly Django's body and headers, leaves to Django what it cannot
answer plainly, and counts every request once against one budget."""

import time
from decimal import Decimal

import httpx
import pytest
from django.core.cache import cache

from core import threads
from cryptosite import edge
from cryptosite.asgi import application
from market import documents, selectors
from market.candles import upsert_candles
from market.domain.prices import Quote
from market.markets import tracked_set_changed
from market.prices import record_quotes
from sandbox import simulation as sim
from serving.django_handler import ThreadedASGIHandler
from tests.conftest import set_fault

pytestmark = pytest.mark.django_db(transaction=True)

VOLATILE = {"date", "x-ratelimit-remaining", "x-ratelimit-reset"}


def now_ms() -> int:
    return int(time.time() * 1000)


def client_of(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 5000)), base_url="http://localhost")


@pytest.fixture
async def served():
    """An HTTP client of the application exactly as the server runs it."""
    async with client_of(application) as client:
        yield client
    await edge.close_connections()
    threads.close_connections()


def through_django(monkeypatch):
    """The same request, with the edge out of the way (every route goes on to Django)."""
    monkeypatch.setattr(edge, "ROUTES", {})


def headers(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VOLATILE}


def store(source: str, symbol: str, price: str, at: int | None = None):
    at = at or now_ms()
    return record_quotes(source, [Quote(symbol, Decimal(price), at)], at)


def store_candles(symbol: str, timeframe: str, count: int) -> None:
    now = now_ms()
    size = {"1m": 60_000, "1h": 3_600_000}[timeframe]
    upsert_candles("binance", symbol, timeframe, sim.series(symbol, timeframe, now - (count - 1) * size, now, now))


@pytest.mark.parametrize("path", ["/api/market/price?symbol=btc", "/api/market/price?symbol=BTC&source=Coinbase",
                                  "/prices", "/coins", "/api/market/ohlc?symbol=ETH&timeframe=1h&limit=24",
                                  "/api/market/ohlc?symbol=ethusdt&limit=3"])
@pytest.mark.parametrize("request_headers", [{}, {"Origin": "https://example.org"}])
async def test_the_edge_answers_exactly_what_django_answers(served, monkeypatch, settings, path, request_headers):
    settings.RATE_LIMIT = "1000/d"
    await _stored(lambda: (store("binance", "BTC", "50000.5"), store("coinbase", "BTC", "50010.25"),
                           store_candles("ETH", "1h", 24)))
    await served.get(path, headers=request_headers)  # renders what the view renders on demand
    fast = await served.get(path, headers=request_headers)
    assert fast.status_code == 200, fast.text
    with monkeypatch.context() as patch:
        through_django(patch)
        slow = await served.get(path, headers=request_headers)
    assert slow.status_code == 200
    assert fast.content == slow.content
    assert headers(fast) == headers(slow)
    assert int(slow.headers["x-ratelimit-remaining"]) == int(fast.headers["x-ratelimit-remaining"]) - 1


async def test_behind_a_tls_proxy_the_edge_adds_hsts_as_django_does(served, monkeypatch, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    await _stored(lambda: store("binance", "BTC", "50000.5"))
    # Django's middleware reads its settings once, at start: a server started with these.
    async with client_of(edge.Edge(ThreadedASGIHandler())) as restarted:
        fast = await restarted.get("/api/market/price?symbol=BTC", headers={"X-Forwarded-Proto": "https"})
        with monkeypatch.context() as patch:
            through_django(patch)
            slow = await restarted.get("/api/market/price?symbol=BTC", headers={"X-Forwarded-Proto": "https"})
        assert fast.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
        assert headers(fast) == headers(slow) and fast.content == slow.content
        # Plain HTTP is redirected to HTTPS, by Django, as before.
        plain = await restarted.get("/api/market/price?symbol=BTC")
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")


async def test_a_restricted_cors_list_is_checked_by_django(served, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://allowed.example"]
    settings.CORS_ALLOW_ALL_ORIGINS = False
    await _stored(lambda: store("binance", "BTC", "50000.5"))
    allowed = await served.get("/prices", headers={"Origin": "https://allowed.example"})
    other = await served.get("/prices", headers={"Origin": "https://other.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://allowed.example"
    assert "access-control-allow-origin" not in other.headers
    assert allowed.content == other.content


async def test_a_host_outside_allowed_hosts_is_refused(served):
    response = await served.get("/coins", headers={"Host": "evil.example"})
    assert response.status_code == 400


async def test_a_stale_price_is_not_served_from_its_document_but_fetched_live(served, sandbox):
    old = now_ms() - 60_000  # older than three 5 s poll intervals
    await _stored(lambda: store("binance", "BTC", "1.5", old))
    assert await _redis_get(documents.price_key("binance", "BTC")) is None  # expired with its freshness
    response = await served.get("/api/market/price?symbol=BTC")
    body = response.json()
    assert response.status_code == 200
    assert body["price"] != 1.5 and body["stale"] is False
    assert abs(body["price"] - float(sim.price("BTC", now_ms()))) / body["price"] < 0.01


async def test_bad_parameters_get_the_views_errors(served):
    assert (await served.get("/api/market/price")).status_code == 400
    assert (await served.get("/api/market/price?symbol=BTC&source=")).status_code == 400
    assert (await served.get("/api/market/price?symbol=BTC&source=mtgox")).status_code == 404


async def test_a_price_stored_after_the_document_replaces_it_at_once(served):
    from market.models import TrackedMarket

    await _stored(lambda: TrackedMarket.objects.get_or_create(source="binance", symbol="BTC"))
    await _stored(lambda: store("binance", "BTC", "100"))
    assert (await served.get("/api/market/price?symbol=BTC")).json()["price"] == 100
    await _stored(lambda: store("binance", "BTC", "101", now_ms() + 1))
    assert (await served.get("/api/market/price?symbol=BTC")).json()["price"] == 101
    prices = (await served.get("/prices")).json()
    assert prices["Binance"]["BTC"]["price"] == 101 and prices["Binance"]["BTC"]["change_pct"] == 1.0


async def test_candles_stored_after_the_document_replace_it_at_once(served, sandbox):
    await _stored(lambda: store_candles("ETH", "1m", 5))
    path = "/api/market/ohlc?symbol=ETH&timeframe=1m&limit=5"
    first = (await served.get(path)).json()["ohlc"]
    assert (await served.get(path)).json()["ohlc"] == first  # now from its document
    newest = first[-1]

    def move():
        from market.domain.candles import Candle

        upsert_candles("binance", "ETH", "1m", [Candle(newest["timestamp"], Decimal(1), Decimal(9), Decimal(1),
                                                                 Decimal(7), Decimal(3), False)])

    await _stored(move)
    again = (await served.get(path)).json()["ohlc"]
    assert again[:-1] == first[:-1] and again[-1]["close"] == 7 and again[-1]["high"] == 9


async def test_an_admin_edit_of_the_tracked_set_reaches_prices_and_coins(served):
    from market.models import TrackedMarket

    assert "DOGE" not in (await served.get("/coins")).json()["Binance"]
    await _stored(lambda: (TrackedMarket.objects.create(source="binance", symbol="DOGE"), tracked_set_changed()))
    assert "DOGE" in (await served.get("/coins")).json()["Binance"]


async def test_one_budget_for_what_the_edge_and_django_answer(served, sandbox, settings):
    settings.RATE_LIMIT = "4/d"  # a day's window: the requests cannot straddle a window boundary
    await _stored(lambda: store("binance", "BTC", "50000.5"))
    set_fault(sandbox, "binance", mode="error", status=500)
    answers = [
        await served.get("/api/market/price?symbol=BTC"),  # the edge
        await served.get("/api/market/ohlc?symbol=BTC&timeframe=2h"),  # Django: 400
        await served.get("/coins"),  # Django renders it, the edge answers the next one
        await served.get("/coins"),
    ]
    assert [int(r.headers["x-ratelimit-remaining"]) for r in answers] == [3, 2, 1, 0]
    assert [r.status_code for r in answers] == [200, 400, 200, 200]
    for path in ("/api/market/price?symbol=BTC", "/coins", "/api/market/ohlc?symbol=ETH"):
        limited = await served.get(path)
        assert limited.status_code == 429
        body = limited.json()
        assert body["error"] == "Rate limit exceeded" and 1 <= body["retry_after"] <= 86400
        assert limited.headers["retry-after"] == str(body["retry_after"]) and limited.headers["x-ratelimit-remaining"] == "0"
    assert (await served.get("/health")).status_code in (200, 503)  # never limited


async def _stored(fn):
    from asgiref.sync import sync_to_async

    return await sync_to_async(fn)()


async def _redis_get(key: str):
    return await _stored(lambda: cache._cache.get_client().get(key))


def test_the_price_document_lives_as_long_as_the_price_is_fresh(settings):
    stored = store("binance", "BTC", "50000.5")
    ttl_ms = cache._cache.get_client().pttl(documents.price_key("binance", "BTC"))
    assert 0 < ttl_ms <= selectors.stale_after_ms("binance") == 15_000
    assert ttl_ms > 14_000
    body = cache._cache.get_client().get(documents.price_key("binance", "BTC"))
    assert body == documents.render(documents.price_body(stored[0]))

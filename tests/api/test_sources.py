"""Exchanges through ccxt (OKX, Bybit) and the CoinGecko aggregator, through the whole Django stack
(middleware, DRF, the real database and Redis), with the sandbox speaking their wire formats."""

import time
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks

from market.exchanges import get_exchange
from market.exchanges import http as exchange_http
from market.exchanges.coingecko import CoinGecko
from market.models import PriceTick, TrackedMarket
from market.prices import poll_quotes
from market.selectors import forget_poll_schedule, now_ms, poll_interval
from tests.conftest import request_count, set_fault

pytestmark = pytest.mark.django_db

CCXT = ("okx", "bybit")
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


@pytest.fixture
def sources(settings, sandbox, monkeypatch):
    settings.EXCHANGES = ["binance", "coinbase", "okx", "bybit", "coingecko"]
    monkeypatch.setattr(CoinGecko, "min_interval", 0.0)  # its keyless pacing (6 s) is for the real API
    forget_poll_schedule()
    yield sandbox
    forget_poll_schedule()


def price_printed(sandbox, venue: str, symbol: str) -> D:
    return sandbox.RequestHandlerClass.market.price(venue, symbol)


@pytest.mark.parametrize("venue", CCXT)
def test_a_ccxt_exchanges_price_keeps_the_digits_it_printed(client, sources, venue, monkeypatch):
    moment = time.time()
    monkeypatch.setattr(sources.RequestHandlerClass.market, "clock", lambda: moment)  # the market holds still
    printed = price_printed(sources, venue, "BTC")
    body = client.get("/api/market/price", {"symbol": "BTC", "source": venue}).json()
    assert body["source"] == venue and body["symbol"] == "BTC" and D(str(body["price"])) == printed
    assert PriceTick.objects.get(source=venue, symbol="BTC").price == printed


@pytest.mark.parametrize("venue", CCXT + ("coingecko",))
@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_candles_in_every_timeframe_from_every_source(client, sources, venue, timeframe):
    response = client.get("/api/market/ohlc", {"symbol": "ETH", "source": venue, "timeframe": timeframe, "limit": 5})
    assert response.status_code == 200, response.content
    ohlc = response.json()["ohlc"]
    assert ohlc, f"no {timeframe} candles from {venue}"
    times = [c["timestamp"] for c in ohlc]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(c["low"] <= min(c["open"], c["close"]) <= max(c["open"], c["close"]) <= c["high"] for c in ohlc)


@pytest.mark.parametrize("venue", CCXT)
def test_a_ccxt_exchanges_book_keeps_its_numbers_best_first(client, sources, venue):
    body = client.get("/api/market/orderbook", {"symbol": "BTC", "source": venue, "depth": 5}).json()
    assert body["source"] == venue and len(body["bids"]) == 5 and len(body["asks"]) == 5
    bids, asks = [b[0] for b in body["bids"]], [a[0] for a in body["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]


def test_coingecko_has_no_book_and_says_so(client, sources):
    response = client.get("/api/market/orderbook", {"symbol": "BTC", "source": "coingecko"})
    assert response.status_code == 404
    assert "order book" in response.json()["error"]


def test_the_composite_is_made_of_exchanges_never_the_aggregator(client, sources):
    body = client.get("/api/market/price", {"symbol": "BTC", "source": "composite"}).json()
    assert sorted(body["sources"]) == ["binance", "bybit", "coinbase", "okx"]
    book = client.get("/api/market/orderbook", {"symbol": "BTC", "source": "composite", "depth": 5}).json()
    assert book["sources"] == ["binance", "bybit", "coinbase", "okx"]


@pytest.mark.parametrize("venue", CCXT + ("coingecko",))
def test_an_unknown_symbol_is_404(client, sources, venue):
    response = client.get("/api/market/price", {"symbol": "NOPE", "source": venue})
    assert response.status_code == 404 and "NOPE" in response.json()["error"]


@pytest.mark.parametrize(
    "fault,status",
    [({"mode": "error", "status": 500}, 502), ({"mode": "malformed"}, 502), ({"mode": "drop"}, 503),
     ({"mode": "ratelimit", "retry_after": 7}, 503), ({"mode": "timeout", "latency": 3}, 504)],
)
def test_a_ccxt_exchanges_faults_map_to_the_contracts_statuses(client, sources, settings, fault, status):
    settings.EXCHANGE_TIMEOUT = 1.0
    client.get("/api/market/price", {"symbol": "ETH", "source": "okx"})  # the listing, before the fault
    set_fault(sources, "okx", **fault)
    response = client.get("/api/market/price", {"symbol": "BTC", "source": "okx"})
    assert response.status_code == status, response.content
    assert set(response.json()) >= {"error", "timestamp"}


def test_a_ccxt_exchanges_429_backs_off_every_process(client, sources):
    client.get("/api/market/price", {"symbol": "ETH", "source": "bybit"})
    set_fault(sources, "bybit", mode="ratelimit", retry_after=30)
    assert client.get("/api/market/price", {"symbol": "BTC", "source": "bybit"}).status_code == 503
    calls = request_count(sources, "bybit")
    exchange_http.reset_state()  # another process knows nothing of this one's memory: Redis tells it
    response = client.get("/api/market/price", {"symbol": "SOL", "source": "bybit"})
    assert response.status_code == 503 and "back off" in response.json()["error"]
    assert request_count(sources, "bybit") == calls


def test_the_poller_stores_every_sources_prices(sources):
    for venue in CCXT + ("coingecko",):
        poll_quotes(venue, ["BTC", "ETH"], now_ms())
        assert set(PriceTick.objects.filter(source=venue).values_list("symbol", flat=True)) == {"BTC", "ETH"}


def test_coins_prices_and_history_name_every_source(client, sources):
    for venue in CCXT + ("coingecko",):
        TrackedMarket.objects.get_or_create(source=venue, symbol="BTC")
        poll_quotes(venue, ["BTC"], now_ms())
    coins = client.get("/coins").json()
    assert {"OKX", "Bybit", "CoinGecko"} <= set(coins) and coins["OKX"] == ["BTC"]
    prices = client.get("/prices").json()
    assert prices["CoinGecko"]["BTC"]["source"] == "CoinGecko"
    history = client.get("/history", {"symbol": "BTC", "source": "okx", "limit": 1}).json()
    assert len(history) == 1 and history[0]["source"] == "OKX"


def test_health_says_what_each_source_is(client, sources):
    for venue in CCXT + ("coingecko",):
        poll_quotes(venue, ["BTC"], now_ms())
    health = client.get("/health").json()["sources"]
    assert health["okx"]["kind"] == "exchange" and health["okx"]["via"] == "ccxt"
    assert health["binance"]["via"] == "native"
    assert health["coingecko"]["kind"] == "aggregator" and "CoinGecko" in health["coingecko"]["timestamps"]


def test_coingecko_is_polled_within_its_budget(sources, settings):
    settings.POLL_INTERVAL = 5
    forget_poll_schedule()
    assert poll_interval("okx") == 5
    assert poll_interval("coingecko") >= get_exchange("coingecko").min_poll_interval > 5


def test_the_admin_adds_a_market_of_any_configured_exchange(client, sources):
    User.objects.create_superuser("operator", "op@example.com", "a-long-operator-password")
    client.login(username="operator", password="a-long-operator-password")
    form = client.get("/admin/market/trackedmarket/add/").content.decode()
    assert 'value="okx"' in form and 'value="coingecko"' in form
    bad = client.post("/admin/market/trackedmarket/add/", {"source": "okx", "symbol": "NOPE", "enabled": "on"})
    assert bad.status_code == 200 and "Symbol not found" in bad.content.decode()
    good = client.post("/admin/market/trackedmarket/add/", {"source": "bybit", "symbol": "doge", "enabled": "on"})
    assert good.status_code == 302
    assert TrackedMarket.objects.filter(source="bybit", symbol="DOGE").exists()


def test_an_unknown_exchange_id_stops_the_start_and_a_ccxt_one_does_not(settings):
    settings.EXCHANGES = ["binance", "okx", "bitstamp", "coingecko", "mtgoxx"]
    errors = [m for m in run_checks() if m.id == "market.E002"]
    assert len(errors) == 1 and "mtgoxx" in errors[0].msg



def test_an_alert_on_a_ccxt_exchanges_price_fires(sources, settings, monkeypatch):
    from django.test import Client

    from alerts import services
    from apikeys import services as key_services
    from market.domain.prices import Quote
    from market.markets import tracked_set_changed
    from market.prices import record_quotes

    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    monkeypatch.setattr(services, "_enqueue", lambda deliveries: None)  # delivery is tests/alerts' concern
    services.forget_indexes()
    TrackedMarket.objects.get_or_create(source="okx", symbol="BTC")
    tracked_set_changed()
    keyed = Client(headers={"X-API-Key": key_services.create_key("trader", "standard")[1]})
    created = keyed.post("/api/alerts", {"symbol": "BTC", "source": "OKX", "above": 70000,
                                         "webhook_url": "http://127.0.0.1:9/hook"}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["source"] == "okx"
    at = now_ms()
    record_quotes("okx", [Quote("BTC", D("69000"), at)], at)
    ticks = record_quotes("okx", [Quote("BTC", D("70000.5"), at + 1000)], at + 1000)
    assert services.evaluate(ticks) == 1
    assert keyed.get(f"/api/alerts/{created.json()['id']}").json()["fired_count"] == 1
    services.forget_indexes()

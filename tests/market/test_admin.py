"""The operator's admin through Django's full request stack."""

import time
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from market.candles import candles_for_request
from market.domain.prices import Quote
from market.models import ExchangeSchedule, TrackedMarket
from market.prices import record_quotes
from market.tasks import dispatch_polls

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    User.objects.create_superuser("operator", "op@example.com", "a-long-operator-password")
    client.login(username="operator", password="a-long-operator-password")
    return client


def now_ms():
    return int(time.time() * 1000)


def test_anonymous_users_are_sent_to_the_login_page(client):
    for path in ("/admin/", "/admin/market/pricetick/", "/admin/market/trackedmarket/add/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_there_are_no_default_credentials():
    assert not User.objects.exists()


def test_ticks_are_read_only_and_can_be_filtered_and_searched(operator):
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("50000.5"), t), Quote("ETH", D("2000.25"), t)], t)
    record_quotes("coinbase", [Quote("BTC", D("50010.75"), t)], t)
    listing = operator.get("/admin/market/pricetick/")
    assert listing.status_code == 200
    filtered = operator.get("/admin/market/pricetick/", {"source": "coinbase", "symbol": "BTC"}).content.decode()
    assert "50010.75" in filtered and "50000.5" not in filtered
    searched = operator.get("/admin/market/pricetick/", {"q": "ETH"}).content.decode()
    assert "2000.25" in searched and "50010.75" not in searched
    assert operator.get("/admin/market/pricetick/add/").status_code == 403
    day = time.strftime("%Y-%m-%d", time.gmtime(t / 1000)).split("-")
    by_day = operator.get("/admin/market/pricetick/", {"timestamp__year": day[0], "timestamp__month": int(day[1]),
                                                       "timestamp__day": int(day[2])})
    assert "50000.5" in by_day.content.decode()


def test_candles_are_read_only_with_filters(operator, sandbox):
    candles_for_request("binance", "BTC", "1h", 5, None, None)
    page = operator.get("/admin/market/candle/", {"timeframe": "1h", "closed__exact": "1"}).content.decode()
    assert "BTC" in page
    assert operator.get("/admin/market/candle/add/").status_code == 403


def test_the_untracked_markets_kept_are_listed_with_who_first_asked_read_only(operator, sandbox):
    assert operator.get("/api/market/price", {"symbol": "DOGE"}, REMOTE_ADDR="203.0.113.9").status_code == 200
    assert operator.get("/api/market/price", {"symbol": "XRP", "source": "coinbase"}).status_code == 200
    page = operator.get("/admin/market/ondemandmarket/").content.decode()
    assert "DOGE" in page and "203.0.113.9" in page and "XRP" in page and "127.0.0.1" in page
    searched = operator.get("/admin/market/ondemandmarket/", {"q": "203.0.113.9"}).content.decode()
    assert "DOGE" in searched and "XRP" not in searched
    assert operator.get("/admin/market/ondemandmarket/add/").status_code == 403


def test_adding_a_market_checks_the_exchange_listing(operator, sandbox):
    bad = operator.post("/admin/market/trackedmarket/add/", {"source": "binance", "symbol": "NOPE", "enabled": "on"})
    assert bad.status_code == 200 and "Symbol not found" in bad.content.decode()
    good = operator.post("/admin/market/trackedmarket/add/", {"source": "binance", "symbol": "dogeusdt", "enabled": "on"})
    assert good.status_code == 302
    assert TrackedMarket.objects.filter(source="binance", symbol="DOGE", enabled=True).exists()


def test_a_market_page_shows_its_recent_candles(operator, sandbox):
    candles_for_request("binance", "BTC", "1h", 24, None, None)
    market = TrackedMarket.objects.get(source="binance", symbol="BTC")
    page = operator.get(f"/admin/market/trackedmarket/{market.pk}/change/").content.decode()
    assert 'id="market-chart"' in page and "&quot;timestamp&quot;" in page


def test_the_poll_schedule_is_editable_and_applies_without_a_restart(operator, settings):
    settings.POLL_INTERVAL = 5
    ExchangeSchedule.objects.create(source="coinbase", poll_interval=60, enabled=True)
    ExchangeSchedule.objects.create(source="binance", poll_interval=5, enabled=False)
    from market.selectors import forget_poll_schedule

    forget_poll_schedule()
    assert dispatch_polls.apply().get() == ["coinbase"]  # binance paused
    assert dispatch_polls.apply().get() == []  # coinbase's 60 s slot is taken
    bad = operator.post("/admin/market/exchangeschedule/add/", {"source": "kraken", "poll_interval": "0.1", "enabled": "on"})
    assert bad.status_code == 200 and "greater than or equal to 1" in bad.content.decode()


def test_the_admin_cannot_be_framed(operator):
    response = operator.get("/admin/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_login_attempts_are_rate_limited(client, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/d"  # a window the four requests cannot straddle
    statuses = [client.post("/admin/login/", {"username": "x", "password": "y"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]

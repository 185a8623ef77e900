"""What a stranger can make the server fetch and keep for markets nobody tracks is bounded: how
far back (UNTRACKED_CANDLES per timeframe; older candles are served, not stored), for how long
(UNTRACKED_RETENTION_HOURS, pruned by beat) and how many markets (UNTRACKED_MARKETS_MAX, then a
503). Tracked markets keep their behaviour."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from market import tasks
from market.candles import upsert_candles
from market.domain.timeframes import TIMEFRAMES, align
from market.markets import TooManyUntracked, admit_untracked, watch
from market.models import Candle, OnDemandMarket, PriceTick
from market.schedule import beat_schedule
from sandbox import simulation as sim

pytestmark = pytest.mark.django_db

H = TIMEFRAMES["1h"]


def now_ms() -> int:
    return int(time.time() * 1000)


def stored(source: str, symbol: str, timeframe: str = "1h") -> list[int]:
    return list(Candle.objects.filter(source=source, symbol=symbol, timeframe=timeframe)
                .order_by("open_time").values_list("open_time", flat=True))


def ohlc(client, symbol: str, **params) -> list[dict]:
    response = client.get("/api/market/ohlc", {"symbol": symbol, "source": "binance", "timeframe": "1h", **params})
    assert response.status_code == 200, response.content
    return response.json()["ohlc"]


def test_a_stranger_asking_deep_history_of_an_untracked_market_stores_at_most_the_bound(client, sandbox, settings):
    settings.UNTRACKED_CANDLES = 50
    deep = align(now_ms(), "1h") - 3000 * H
    for symbol in ("ATOM", "BTC"):  # ATOM nobody tracks; BTC is tracked (seeded from SYMBOLS)
        old = ohlc(client, symbol, start=deep, limit=1000)
        recent = ohlc(client, symbol, limit=1000)
        # Served whole and gap-free either way, as the contract says.
        for candles in (old, recent):
            times = [c["timestamp"] for c in candles]
            assert len(times) == 1000 and times == list(range(times[0], times[0] + 1000 * H, H))
        assert old[0]["timestamp"] == deep and old[0]["close"] == float(sim.candle(symbol, "1h", deep).close)
    newest = align(now_ms(), "1h")
    assert len(stored("binance", "ATOM")) <= 50 and min(stored("binance", "ATOM")) >= newest - 50 * H
    assert len(stored("binance", "BTC")) == 2000  # a tracked market keeps all it fetched, as before


def test_pruning_removes_untracked_candles_and_keeps_tracked_ones(sandbox, settings):
    settings.UNTRACKED_CANDLES, settings.UNTRACKED_RETENTION_HOURS = 24, 6
    now = now_ms()
    first = align(now, "1h") - 99 * H
    for symbol in ("BTC", "ATOM", "DOT"):  # tracked; untracked, long unused; untracked, in use
        upsert_candles("binance", symbol, "1h", sim.series(symbol, "1h", first, now, now))
    OnDemandMarket.objects.create(source="binance", symbol="ATOM", expires_at=timezone.now() - timedelta(hours=8),
                                  used_at=timezone.now() - timedelta(hours=7))
    admit_untracked("binance", "DOT")

    assert tasks.prune_untracked_markets() == 100 + 76

    assert len(stored("binance", "BTC")) == 100  # tracked: every candle, however old
    assert stored("binance", "ATOM") == [] and not OnDemandMarket.objects.filter(symbol="ATOM").exists()
    assert stored("binance", "DOT") == list(range(align(now, "1h") - 23 * H, align(now, "1h") + H, H))
    assert OnDemandMarket.objects.filter(symbol="DOT").exists()
    assert beat_schedule()["prune-untracked"]["task"] == "market.tasks.prune_untracked_markets"


def test_the_server_keeps_data_for_at_most_the_configured_number_of_untracked_markets(client, sandbox, settings):
    settings.UNTRACKED_MARKETS_MAX = 2
    for symbol in ("DOGE", "XRP"):
        assert client.get("/api/market/price", {"symbol": symbol}).status_code == 200
    refused = client.get("/api/market/price", {"symbol": "LTC"})
    assert refused.status_code == 503
    body = refused.json()
    assert set(body) >= {"error", "timestamp"} and "UNTRACKED_MARKETS_MAX" in body["error"]
    assert client.get("/api/market/ohlc", {"symbol": "LTC", "timeframe": "1h", "limit": 5}).status_code == 503
    with pytest.raises(TooManyUntracked):  # a live subscription (or alert) is refused alike
        watch("binance", "LTC")
    assert not PriceTick.objects.filter(symbol="LTC").exists() and not Candle.objects.filter(symbol="LTC").exists()
    # Markets already kept, and tracked ones, are served as before.
    assert client.get("/api/market/price", {"symbol": "DOGE"}).status_code == 200
    assert client.get("/api/market/price", {"symbol": "BTC"}).status_code == 200
    # Once one is forgotten (unused for UNTRACKED_RETENTION_HOURS), there is room for another.
    OnDemandMarket.objects.filter(symbol="XRP").update(used_at=timezone.now() - timedelta(days=2))
    tasks.prune_untracked_markets()
    assert client.get("/api/market/price", {"symbol": "LTC"}).status_code == 200
    assert set(OnDemandMarket.objects.values_list("symbol", flat=True)) == {"DOGE", "LTC"}


def test_one_client_first_asks_for_at_most_its_share_of_the_untracked_markets(client, sandbox, settings):
    """UNTRACKED_MARKETS_PER_CLIENT: one address cannot take all the room there is. Past its share
    a new market is a 429 naming the setting and stores nothing; another address still gets one,
    a market already kept is served to anyone, and a forgotten one frees a place in the share."""
    settings.UNTRACKED_MARKETS_MAX, settings.UNTRACKED_MARKETS_PER_CLIENT = 100, 2
    for symbol in ("DOGE", "XRP"):
        assert client.get("/api/market/price", {"symbol": symbol}).status_code == 200
    for path, params in (("/api/market/price", {}), ("/api/market/ohlc", {"timeframe": "1h", "limit": 5})):
        refused = client.get(path, {"symbol": "LTC", **params})
        assert refused.status_code == 429, refused.content
        assert "UNTRACKED_MARKETS_PER_CLIENT" in refused.json()["error"]
    assert not PriceTick.objects.filter(symbol="LTC").exists() and not Candle.objects.filter(symbol="LTC").exists()
    assert not OnDemandMarket.objects.filter(symbol="LTC").exists()
    assert client.get("/api/market/price", {"symbol": "DOGE"}).status_code == 200  # its own, kept: served
    other = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/api/market/price", {"symbol": "XRP"}, **other).status_code == 200  # kept: served to anyone
    assert client.get("/api/market/price", {"symbol": "LTC"}, **other).status_code == 200
    assert dict(OnDemandMarket.objects.values_list("symbol", "admitted_for")) == {
        "DOGE": "127.0.0.1", "XRP": "127.0.0.1", "LTC": "203.0.113.9"}
    OnDemandMarket.objects.filter(symbol="XRP").update(used_at=timezone.now() - timedelta(days=2))
    tasks.prune_untracked_markets()
    assert client.get("/api/market/price", {"symbol": "ADA"}).status_code == 200  # ADA is tracked: no share used
    assert client.get("/api/market/price", {"symbol": "DOT"}).status_code == 200
    settings.UNTRACKED_MARKETS_PER_CLIENT = 0  # no share: only the server's bound
    assert client.get("/api/market/price", {"symbol": "LINK"}).status_code == 200
    assert client.get("/api/market/price", {"symbol": "AVAX"}).status_code == 200

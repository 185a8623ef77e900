"""The market endpoints through the whole Django stack (middleware, DRF, real database and
Redis cache), with the sandbox exchange as the upstream."""

import csv
import io
import time

import pytest

from market.domain.prices import Quote
from market.exchanges import http as exchange_http
from market.models import Candle, PriceTick
from market.prices import poll_quotes, record_quotes
from sandbox import simulation as sim
from tests.conftest import request_count, set_fault

pytestmark = pytest.mark.django_db


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_error(response, status, fragment=""):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"error", "timestamp"}
    assert fragment in body["error"]
    return body


class TestPrice:
    def test_a_fresh_stored_price_is_served_without_asking_the_exchange(self, client, sandbox):
        from decimal import Decimal

        record_quotes("binance", [Quote("BTC", Decimal("50000.50000000"))], now_ms())
        set_fault(sandbox, "binance", mode="error", status=500)
        response = client.get("/api/market/price", {"symbol": "BTC"})
        assert response.status_code == 200
        body = response.json()
        assert body["symbol"] == "BTC" and body["price"] == 50000.5 and body["source"] == "binance"
        assert isinstance(body["timestamp"], int) and body["stale"] is False
        assert request_count(sandbox, "binance") == 0

    def test_without_a_fresh_price_it_is_fetched_live_and_stored(self, client, sandbox):
        response = client.get("/api/market/price", {"symbol": "ethusdt", "source": "Coinbase"})
        assert response.status_code == 200
        body = response.json()
        assert body["symbol"] == "ETH" and body["source"] == "coinbase"
        assert PriceTick.objects.filter(source="coinbase", symbol="ETH").count() == 1
        assert abs(body["price"] - float(sim.price("ETH", now_ms()))) / body["price"] < 0.01

    def test_an_untracked_symbol_the_exchange_lists_is_served_live(self, client, sandbox):
        response = client.get("/api/market/price", {"symbol": "DOGE"})
        assert response.status_code == 200
        assert response.json()["symbol"] == "DOGE"

    def test_an_unknown_symbol_is_404(self, client, sandbox):
        assert_error(client.get("/api/market/price", {"symbol": "INVALID_SYMBOL"}), 404, "Symbol not found: INVALID_SYMBOL")

    def test_an_unknown_source_is_404(self, client, sandbox):
        assert_error(client.get("/api/market/price", {"symbol": "BTC", "source": "mtgox"}), 404, "Unknown source")

    @pytest.mark.parametrize("params", [{}, {"symbol": ""}, {"symbol": "B T C"}])
    def test_a_missing_or_malformed_symbol_is_400(self, client, params):
        assert_error(client.get("/api/market/price", params), 400)

    def test_composite_is_the_median_of_the_exchanges_with_its_sources(self, client, sandbox):
        body = client.get("/api/market/price", {"symbol": "BTC", "source": "composite"}).json()
        assert body["source"] == "composite"
        assert body["sources"] == ["binance", "coinbase"]
        prices = [client.get("/api/market/price", {"symbol": "BTC", "source": s}).json()["price"] for s in body["sources"]]
        assert min(prices) - 1 <= body["price"] <= max(prices) + 1

    @pytest.mark.parametrize(
        "fault,status",
        [({"mode": "error", "status": 500}, 502), ({"mode": "malformed"}, 502), ({"mode": "drop"}, 503),
         ({"mode": "ratelimit", "retry_after": 7}, 503), ({"mode": "timeout", "latency": 3}, 504)],
    )
    def test_exchange_faults_map_to_the_contracts_statuses(self, client, sandbox, settings, fault, status):
        settings.EXCHANGE_TIMEOUT = 1.0
        set_fault(sandbox, "binance", **fault)
        assert_error(client.get("/api/market/price", {"symbol": "BTC"}), status)

    def test_after_a_429_the_exchange_is_not_called_again_until_retry_after(self, client, sandbox):
        set_fault(sandbox, "coinbase", mode="ratelimit", retry_after=30)
        assert_error(client.get("/api/market/price", {"symbol": "BTC", "source": "coinbase"}), 503)
        calls = request_count(sandbox, "coinbase")
        assert_error(client.get("/api/market/price", {"symbol": "ETH", "source": "coinbase"}), 503, "back off")
        assert request_count(sandbox, "coinbase") == calls

    def test_a_back_off_is_shared_by_every_process(self, client, sandbox):
        set_fault(sandbox, "coinbase", mode="ratelimit", retry_after=30)
        assert_error(client.get("/api/market/price", {"symbol": "BTC", "source": "coinbase"}), 503)
        calls = request_count(sandbox, "coinbase")
        exchange_http.reset_state()  # what another process (the worker) knows: nothing of this one's memory
        body = assert_error(client.get("/api/market/price", {"symbol": "ETH", "source": "coinbase"}), 503, "back off")
        assert request_count(sandbox, "coinbase") == calls, body


class TestOhlc:
    def test_candles_equal_the_exchanges_oldest_first_with_only_the_newest_open(self, client, sandbox):
        body = client.get("/api/market/ohlc", {"symbol": "ETH", "timeframe": "1h", "limit": 10}).json()
        assert body["symbol"] == "ETH" and body["timeframe"] == "1h"
        ohlc = body["ohlc"]
        assert len(ohlc) == 10
        times = [c["timestamp"] for c in ohlc]
        assert times == sorted(times) and all(b - a == 3_600_000 for a, b in zip(times, times[1:]))
        assert [c["closed"] for c in ohlc] == [True] * 9 + [False]
        expected = sim.candle("ETH", "1h", ohlc[0]["timestamp"])
        assert ohlc[0]["open"] == float(expected.open) and ohlc[0]["high"] == float(expected.high)
        assert ohlc[0]["low"] == float(expected.low) and ohlc[0]["close"] == float(expected.close)
        assert ohlc[0]["volume"] == float(expected.volume)
        assert set(ohlc[0]) == {"timestamp", "open", "high", "low", "close", "volume", "closed"}

    def test_a_second_request_is_served_from_storage(self, client, sandbox):
        client.get("/api/market/ohlc", {"symbol": "BTC", "timeframe": "1d", "limit": 30})
        calls = request_count(sandbox, "binance")
        stored = Candle.objects.filter(symbol="BTC", timeframe="1d").count()
        client.get("/api/market/ohlc", {"symbol": "BTC", "timeframe": "1d", "limit": 20})
        assert stored == 30
        assert request_count(sandbox, "binance") - calls <= 1  # at most a refresh of the open candle

    def test_start_and_end_page_through_history_without_gaps_or_overlap(self, client, sandbox):
        end = (now_ms() // 86_400_000 - 100) * 86_400_000
        first = client.get("/api/market/ohlc", {"symbol": "SOL", "timeframe": "4h", "limit": 50, "end": end}).json()["ohlc"]
        older = client.get(
            "/api/market/ohlc", {"symbol": "SOL", "timeframe": "4h", "limit": 50, "end": first[0]["timestamp"] - 1}
        ).json()["ohlc"]
        joined = [c["timestamp"] for c in older + first]
        assert len(joined) == 100 and all(b - a == 4 * 3_600_000 for a, b in zip(joined, joined[1:]))
        assert first[-1]["timestamp"] == end and all(c["closed"] for c in older + first)
        ranged = client.get(
            "/api/market/ohlc", {"symbol": "SOL", "timeframe": "4h", "start": joined[10], "end": joined[19]}
        ).json()["ohlc"]
        assert [c["timestamp"] for c in ranged] == joined[10:20]

    def test_weekly_candles_open_on_monday(self, client, sandbox):
        from datetime import UTC, datetime

        ohlc = client.get("/api/market/ohlc", {"symbol": "BTC", "timeframe": "1w", "limit": 5, "source": "coinbase"}).json()["ohlc"]
        assert len(ohlc) == 5
        for c in ohlc:
            opened = datetime.fromtimestamp(c["timestamp"] / 1000, UTC)
            assert (opened.weekday(), opened.hour, opened.minute) == (0, 0, 0)

    def test_an_invalid_timeframe_is_400_listing_the_valid_ones(self, client):
        body = assert_error(client.get("/api/market/ohlc", {"symbol": "ETH", "timeframe": "2h"}), 400)
        assert body["error"] == "Invalid timeframe: 2h. Must be one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w"

    @pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc"])
    def test_a_limit_outside_1_to_1000_is_400(self, client, limit):
        assert_error(client.get("/api/market/ohlc", {"symbol": "ETH", "limit": limit}), 400, "limit")

    def test_start_after_end_is_400(self, client):
        assert_error(client.get("/api/market/ohlc", {"symbol": "ETH", "start": 2000, "end": 1000}), 400)

    def test_an_unknown_symbol_is_404_every_time(self, client, sandbox):
        for _ in range(2):
            assert_error(client.get("/api/market/ohlc", {"symbol": "NOPE"}), 404, "NOPE")


class TestWidgetEndpoints:
    def _poll(self, source="binance"):
        return poll_quotes(source, ["BTC", "ETH", "SOL", "ADA"], now_ms())

    def test_prices_are_nested_by_source_then_symbol_with_change_pct(self, client, sandbox):
        self._poll()
        first = client.get("/prices").json()
        assert set(first) == {"Binance", "Coinbase"}
        btc = first["Binance"]["BTC"]
        assert btc["source"] == "Binance" and btc["symbol"] == "BTC" and btc["change_pct"] is None
        assert btc["timestamp"].endswith("+00:00")
        time.sleep(5.1)
        self._poll()
        second = client.get("/prices").json()["Binance"]["BTC"]
        assert isinstance(second["change_pct"], float)

    def test_coins_lists_tracked_symbols_per_source(self, client):
        assert client.get("/coins").json() == {"Binance": ["ADA", "BTC", "ETH", "SOL"], "Coinbase": ["ADA", "BTC", "ETH", "SOL"]}

    def test_history_is_newest_first_and_limited(self, client, sandbox):
        from decimal import Decimal

        base = now_ms() - 60_000
        for i, price in enumerate(["100", "101", "102"]):
            record_quotes("binance", [Quote("BTC", Decimal(price), base + i * 1000)], base + i * 1000)
        rows = client.get("/history", {"symbol": "BTC", "source": "Binance", "limit": 2}).json()
        assert [r["price"] for r in rows] == [102.0, 101.0]
        assert rows[0]["source"] == "Binance" and rows[0]["change_pct"] == pytest.approx(0.9901)
        assert set(rows[0]) == {"timestamp", "source", "symbol", "price", "change_pct"}

    def test_history_as_csv_has_the_original_price_log_header(self, client, sandbox):
        self._poll()
        response = client.get("/history", {"symbol": "BTC", "source": "binance", "format": "csv"})
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0] == ["timestamp", "source", "symbol", "price", "change_pct"]
        assert rows[1][1:3] == ["Binance", "BTC"]

    @pytest.mark.parametrize("params", [{"symbol": "BTC"}, {"source": "Binance"}, {"symbol": "BTC", "source": "Binance", "limit": "0"}])
    def test_history_without_required_parameters_is_400(self, client, params):
        assert_error(client.get("/history", params), 400)


class TestErrorsEverywhere:
    def test_an_unknown_path_is_a_json_404(self, client):
        assert_error(client.get("/api/nothing/here"), 404, "/api/nothing/here")

    def test_a_wrong_method_is_a_json_405(self, client):
        assert_error(client.post("/api/market/price", {}), 405)
        assert_error(client.delete("/prices"), 405)

    def test_bodies_over_the_limit_are_413(self, client):
        response = client.post("/api/sentiment/analyze", "x" * (65 * 1024), content_type="application/json")
        assert_error(response, 413)


class TestRateLimit:
    def test_the_request_past_the_limit_is_429_with_the_original_body_and_headers(self, client, settings):
        # A day's window: the four requests cannot straddle a fixed-window boundary.
        settings.RATE_LIMIT = "3/d"
        for remaining in (2, 1, 0):
            ok = client.get("/coins")
            assert ok.status_code == 200
            assert ok["X-RateLimit-Limit"] == "3" and ok["X-RateLimit-Remaining"] == str(remaining)
            assert int(ok["X-RateLimit-Reset"]) >= time.time()
        limited = client.get("/coins")
        assert limited.status_code == 429
        body = limited.json()
        assert body["error"] == "Rate limit exceeded" and "detail" in body and 1 <= body["retry_after"] <= 86400
        assert limited["Retry-After"] == str(body["retry_after"])
        assert client.get("/health").status_code in (200, 503)  # never limited

    def test_clients_are_told_apart_by_ip_behind_the_configured_proxies(self, client, settings):
        settings.RATE_LIMIT = "1/d"
        settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's address
        assert client.get("/coins", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 200
        assert client.get("/coins", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 200
        assert client.get("/coins", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 429
        # A forged leftmost hop does not buy a new budget: only the trusted proxy's hop is believed.
        assert client.get("/coins", HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.1").status_code == 429


class TestHealthAndDocs:
    def test_health_reports_checks_and_per_source_freshness(self, client, sandbox):
        before = client.get("/health").json()
        assert before["status"] == "degraded" and before["last_updated_utc"] is None
        poll_quotes("binance", ["BTC"], now_ms())
        poll_quotes("coinbase", ["BTC"], now_ms())
        body = client.get("/health").json()
        assert body["status"] == "ok"
        assert body["checks"] == {"database": "ok", "channel_layer": "ok", "broker": "ok"}
        assert body["sources"]["binance"]["stale"] is False and body["sources"]["binance"]["age_seconds"] < 5
        assert body["last_updated_utc"] is not None

    def test_health_names_a_broker_it_cannot_reach_and_answers_503(self, client, settings):
        # (Redis really going away and coming back: tests/api/test_outages.py.)
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        response = client.get("/health")
        body = response.json()
        assert response.status_code == 503
        assert body["status"] == "down" and body["checks"]["broker"] == "down" and body["checks"]["database"] == "ok"

    def test_the_openapi_schema_describes_every_endpoint(self, client):
        schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
        for path in ("/api/market/price", "/api/market/ohlc", "/api/sentiment/analyze", "/prices", "/coins",
                     "/history", "/health"):
            assert path in schema["paths"], path

    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    def test_docs_pages_load_nothing_from_a_cdn(self, client, path):
        response = client.get(path)
        assert response.status_code == 200
        html = response.content.decode()
        assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


class TestCors:
    def test_any_origin_may_read_the_api_by_default(self, client):
        response = client.get("/coins", HTTP_ORIGIN="https://dashboard.example")
        assert response["Access-Control-Allow-Origin"] == "*"

    def test_the_admin_is_not_opened_to_other_origins(self, client):
        response = client.get("/admin/login/", HTTP_ORIGIN="https://dashboard.example")
        assert "Access-Control-Allow-Origin" not in response

"""REST API: /api/market/price and /api/market/ohlc?limit=1000 under load from a second process on
loopback, beside a bare ASGI endpoint served by daphne the same way."""

import json
import subprocess
import sys
import time
from decimal import Decimal

from cryptosite.stack import free_port, wait_for_port

from .common import Report

SECONDS = 8
CONCURRENCY = 16


def load(url: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", url, str(CONCURRENCY), str(SECONDS)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def fmt(result: dict) -> str:
    errors = f", {result['errors']} non-200" if result["errors"] else ""
    return f"{result['rps']:,.0f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms{errors}"


def seed() -> None:
    from market import services
    from market.domain.prices import Quote
    from market.models import Candle
    from market.sandbox import simulation as sim

    now = int(time.time() * 1000)
    services.record_quotes("binance", [Quote("BTC", Decimal("50000.5"), now)], now)
    candles = sim.series("ETH", "1h", now - 999 * 3_600_000, now, now)
    Candle.objects.filter(symbol="ETH").delete()
    services.upsert_candles("binance", "ETH", "1h", candles)


def queries_per_cached_price() -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.get("/api/market/price?symbol=BTC")  # fills the cache
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/market/price?symbol=BTC")
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def run(scratch) -> Report:
    report = Report("REST API under load (16 concurrent connections, 8 s each)")
    seed()
    report.add("database queries per cached /api/market/price", str(queries_per_cached_price()), "–")
    servers = {}
    try:
        for name, app in (("app", "cryptosite.asgi:application"), ("bare", "bench.bare_asgi:application")):
            port = free_port()
            servers[name] = (port, scratch.spawn([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
                                                 POLL_INTERVAL="3600"))
            wait_for_port("127.0.0.1", port, 60, servers[name][1])
        app, bare = servers["app"][0], servers["bare"][0]
        load(f"http://127.0.0.1:{app}/api/market/price?symbol=BTC")  # warm-up
        baseline = load(f"http://127.0.0.1:{bare}/")
        report.add("GET /api/market/price?symbol=BTC (cached)", fmt(load(f"http://127.0.0.1:{app}/api/market/price?symbol=BTC")),
                   fmt(baseline) + " (bare ASGI)")
        report.add("GET /api/market/ohlc?symbol=ETH&timeframe=1h&limit=1000",
                   fmt(load(f"http://127.0.0.1:{app}/api/market/ohlc?symbol=ETH&timeframe=1h&limit=1000")), "same bare ASGI")
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(10)
    return report

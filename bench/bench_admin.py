"""Admin on millions of ticks: seed BENCH_TICKS (default 5,000,000) and time the tick list's
first page and a filtered page, beside the bare ORM query for the same rows."""

import os
import random
import time
from datetime import UTC, datetime

from .common import Report, timed


def seed(count: int) -> float:
    from django.db import connection, transaction

    symbols = ["BTC", "ETH", "SOL", "ADA", "DOGE", "XRP", "DOT", "LTC", "LINK", "AVAX"]
    sources = ["binance", "coinbase", "kraken"]
    start = time.time() - count * 0.05  # spread over the last days, 20 ticks a second
    rng = random.Random(7)
    sql = ("INSERT INTO market_pricetick (source, symbol, price, timestamp, received_at, change_pct) "
           "VALUES (%s, %s, %s, %s, %s, %s)")
    t0 = time.perf_counter()
    batch = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for i in range(count):
                moment = datetime.fromtimestamp(start + i * 0.05, UTC)
                batch.append((sources[i % 3], symbols[(i // 3) % 10], f"{rng.uniform(1, 60000):.2f}", moment, moment, None))
                if len(batch) == 20_000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    return time.perf_counter() - t0


def run(scratch) -> Report:
    from django.contrib.auth.models import User
    from django.test import Client

    from market.models import PriceTick

    count = int(os.environ.get("BENCH_TICKS", "5000000"))
    report = Report(f"Admin on {count:,} stored ticks")
    seconds = seed(count)
    report.add("seeding", f"{count / seconds:,.0f} rows/s", "–")
    User.objects.create_superuser("bench", "bench@example.com", "bench-password-long-enough")
    client = Client()
    client.login(username="bench", password="bench-password-long-enough")

    def page(params):
        response = client.get("/admin/market/pricetick/", params)
        assert response.status_code == 200
        return response

    first = timed(lambda: page({}), repeat=3)
    filtered = timed(lambda: page({"source": "coinbase", "symbol": "BTC"}), repeat=3)
    searched = timed(lambda: page({"q": "ETH"}), repeat=3)
    bare_first = timed(lambda: list(PriceTick.objects.order_by("-timestamp")[:100]), repeat=3)
    bare_filtered = timed(lambda: list(PriceTick.objects.filter(source="coinbase", symbol="BTC").order_by("-timestamp")[:100]), repeat=3)
    report.add("tick list, first page", f"{first * 1000:.0f} ms", f"{bare_first * 1000:.1f} ms (ORM query of the same 100 rows)")
    report.add("tick list filtered by source and symbol", f"{filtered * 1000:.0f} ms", f"{bare_filtered * 1000:.1f} ms (ORM query)")
    report.add("tick list searched for a symbol", f"{searched * 1000:.0f} ms", "–")
    return report

"""Market data: a poll cycle (3 exchanges x 50 symbols against the sandbox), tick ingest rate and
candle backfill rate, each beside a baseline measured in the same process."""

import asyncio
import sys
import time
from decimal import Decimal

import httpx

from cryptosite.stack import free_port, wait_for_port

from .common import Report, Scratch, timed


def run(scratch: Scratch) -> Report:
    from django.conf import settings

    from market import aio
    from market.candles import sync_candles, upsert_candles
    from market.domain.prices import Quote
    from market.exchanges import get_exchange
    from market.models import Candle, PriceTick
    from market.prices import record_quotes
    from sandbox.simulation import SYMBOLS

    report = Report("Market data (poll, ingest, backfill)")
    port = free_port()
    sandbox = scratch.spawn([sys.executable, "manage.py", "sandbox_exchange", "--port", str(port)], SANDBOX="1")
    wait_for_port("127.0.0.1", port, 30, sandbox)
    base = f"http://127.0.0.1:{port}"
    settings.EXCHANGE_API_URLS = {name: f"{base}/{name}" for name in ("binance", "coinbase", "kraken")}
    symbols = list(SYMBOLS[:50])
    try:
        # Warm the listings (cached for an hour in production).
        for name in ("binance", "coinbase", "kraken"):
            aio.run(get_exchange(name).listing())

        # --- a poll cycle: three exchanges concurrently, then store ---------------------------
        async def poll_all():
            return await asyncio.gather(*(get_exchange(n).fetch_quotes(symbols) for n in ("binance", "coinbase", "kraken")))

        def cycle():
            now = int(time.time() * 1000)
            for name, quotes in zip(("binance", "coinbase", "kraken"), aio.run(poll_all())):
                record_quotes(name, quotes, now)

        async def bare_fetch():
            # Baseline: the same HTTP requests, no pacing, no parsing, no storage.
            async with httpx.AsyncClient() as client:
                jobs = [client.get(f"{base}/binance/api/v3/ticker/price", params={"symbols": "[" + ",".join(f'"{s}USDT"' for s in symbols) + "]"})]
                jobs += [client.get(f"{base}/coinbase/products/{s}-USD/ticker") for s in symbols]
                jobs.append(client.get(f"{base}/kraken/0/public/Ticker", params={"pair": ",".join(f"{s}USD" for s in symbols[3:])}))
                await asyncio.gather(*jobs)

        cycle()  # warm-up
        time.sleep(5.1)
        ours = timed(cycle, repeat=1)
        bare = timed(lambda: asyncio.run(bare_fetch()), repeat=3)
        report.add("poll cycle, 3 exchanges x 50 symbols (fetch + store)", f"{ours * 1000:.0f} ms",
                   f"{bare * 1000:.0f} ms (same requests, unpaced, not stored)")
        report.add("of which Coinbase pacing (50 tickers at <= 8 req/s)", f"{50 * get_exchange('coinbase').min_interval:.1f} s minimum",
                   "Coinbase's public budget is 10 req/s")

        # --- tick ingest --------------------------------------------------------------------
        PriceTick.objects.all().delete()
        rounds = 200
        start_ms = int(time.time() * 1000) - rounds * 10_000

        def ingest():
            for i in range(rounds):
                t = start_ms + i * 10_000
                record_quotes("kraken", [Quote(s, Decimal("100") + i, t) for s in symbols], t)

        elapsed = timed(ingest)
        ours_rate = rounds * len(symbols) / elapsed

        def bare_insert():
            from market.ticks import from_ms

            rows = [PriceTick(source="binance", symbol=s, price=Decimal("100") + i, timestamp=from_ms(start_ms + i * 10_000),
                              received_at=from_ms(start_ms + i * 10_000)) for i in range(rounds) for s in symbols]
            PriceTick.objects.bulk_create(rows, batch_size=500)

        bare_rate = rounds * len(symbols) / timed(bare_insert)
        report.add("tick ingest (dedup, change %, cache)", f"{ours_rate:,.0f} ticks/s", f"{bare_rate:,.0f} ticks/s (plain bulk insert)")

        # --- candle backfill ----------------------------------------------------------------
        settings.BACKFILL_CANDLES = 1000
        Candle.objects.all().delete()
        now = int(time.time() * 1000)
        backfill_symbols = symbols[:5]
        elapsed = timed(lambda: sync_candles("binance", backfill_symbols, now, full=True))
        count = Candle.objects.count()
        fetched = aio.run(get_exchange("binance").fetch_candles("BTC", "1m", now - 999 * 60_000, now, now))
        Candle.objects.all().delete()
        bare = timed(lambda: [upsert_candles("binance", "BTC", "1m", fetched) for _ in range(5)])
        report.add(f"candle backfill, {len(backfill_symbols)} markets x 8 timeframes x 1,000 (fetch + upsert)",
                   f"{count / elapsed:,.0f} candles/s ({count:,} in {elapsed:.1f} s)",
                   f"{5 * len(fetched) / bare:,.0f} candles/s (upsert of already fetched candles)")
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    return report

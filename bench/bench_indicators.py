"""Technical indicators: one `/api/market/indicators` answer for 1,000 candles with five
indicators, timed in process through Django (the server's own time, no network): rendered from the
database (its document superseded first, as by a candle write) and served stored; against the
floor of the same work done bare in the same run (one indexed SELECT of the candles and their
warm-up, TA-Lib, orjson)."""

import time

import numpy as np
import orjson
import talib

from core.cache import redis_client

from .common import Report, percentile

INDICATORS = "sma:20,ema:50,rsi:14,macd:12:26:9,bbands:20:2"
ROUNDS = 40


def seed(now_ms: int) -> int:
    """2,000 hourly BTC candles on Binance from the simulated market: the window and its warm-up."""
    from market.candles import upsert_candles
    from market.domain.timeframes import TIMEFRAMES
    from sandbox import simulation as sim

    size = TIMEFRAMES["1h"]
    candles = sim.series("BTC", "1h", now_ms - 2000 * size, now_ms, now_ms)
    upsert_candles("binance", "BTC", "1h", candles)
    return len(candles)


def ours(path: str, cached: bool) -> list[float]:
    from django.test import Client

    from market import documents

    client, times = Client(), []
    client.get(path)
    for _ in range(ROUNDS):
        if not cached:
            redis_client().incr(documents.candles_version_key("binance", "BTC", "1h"))
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and len(response.json()["rows"]) == 1000
    return times


def floor(count: int) -> list[float]:
    """The same candles read with one query, the same indicators by TA-Lib, the rows by orjson."""
    from django.db import connection

    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT open_time, high, low, close, volume, closed FROM market_candle WHERE source = %s AND "
                           "symbol = %s AND timeframe = %s ORDER BY open_time DESC LIMIT %s", ["binance", "BTC", "1h", count])
            rows = cursor.fetchall()[::-1]
        close = np.array([float(r[3]) for r in rows])
        sma, ema, rsi = talib.SMA(close, 20), talib.EMA(close, 50), talib.RSI(close, 14)
        macd, signal, hist = talib.MACD(close, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
        out = [{"timestamp": r[0], "closed": bool(r[5]), "sma": sma[i], "ema": ema[i], "rsi": rsi[i],
                "macd": {"macd": macd[i], "signal": signal[i], "hist": hist[i]},
                "bbands": {"upper": upper[i], "middle": middle[i], "lower": lower[i]}}
               for i, r in enumerate(rows)][-1000:]
        orjson.dumps({"rows": out}, option=orjson.OPT_SERIALIZE_NUMPY)
        times.append((time.perf_counter() - start) * 1000)
    return times


def text(times: list[float]) -> str:
    return f"p50 **{percentile(times, 50):.2f} ms**, p99 {percentile(times, 99):.2f} ms"


def run(scratch) -> Report:
    from market.indicators.services import warmup
    from market.indicators.spec import parse_indicators

    report = Report("Technical indicators (1,000 hourly candles, five indicators: " + INDICATORS + ")")
    now = int(time.time() * 1000)
    seed(now)
    path = f"/api/market/indicators?symbol=BTC&timeframe=1h&source=binance&limit=1000&indicators={INDICATORS}"
    extra = warmup(parse_indicators(INDICATORS), "1h")
    bare = floor(1000 + extra)
    report.add(f"one answer rendered from the database (1,000 rows + {extra} warm-up candles read)", text(ours(path, False)),
               f"SELECT + TA-Lib + orjson floor: {text(bare)}")
    report.add("one answer served stored (no candle written since)", text(ours(path, True)), "–")
    return report

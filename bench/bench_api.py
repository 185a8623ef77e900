"""REST API under load from wrk (a C load generator, Debian's package), beside peers in the same run:

- a FastAPI + uvicorn app answering the same payloads from memory (bench/peer_fastapi.py), with
  as many worker processes as the server under test;
- the floor for candles: the same 1,000 rows read with one indexed SELECT and rendered with orjson;
- a bare ASGI app answering a fixed body, under uvicorn and under daphne: what each server costs.

cryptosite runs as `make run` starts it (python -m cryptosite.serve, WEB_CONCURRENCY processes)
with everything a client gets: the rate limit counted in Redis (set high enough that nothing is
refused), its headers, CORS, the security headers. A poller stores new prices and moves the open
candles every 5 s, as in `make run`, so documents are rendered again during the run.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from decimal import Decimal

from core.cache import redis_client
from cryptosite.stack import free_port, wait_for_port

from .common import Report

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)))
SYMBOLS = ("BTC", "ETH", "SOL", "ADA")


def wrk(url: str, connections: int, seconds: int = SECONDS, header: str | None = None) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *(["-H", header] if header else []), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "errors": int(errors.group(1)) if errors else 0}


def fmt(result: dict) -> str:
    errors = f", {result['errors']} non-2xx" if result["errors"] else ""
    return f"{result['rps']:,.0f} req/s, p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms{errors}"


def ratio(ours: dict, peer: dict) -> str:
    return f"**{ours['rps'] / peer['rps']:.2f}x** req/s, p99 {ours['p99'] / peer['p99']:.2f}x"


def seed() -> None:
    from django.conf import settings

    from market import selectors
    from market.candles import upsert_candles
    from market.domain.prices import Quote
    from market.models import Candle, TrackedMarket
    from market.prices import record_quotes
    from sandbox import simulation as sim

    settings.POLL_INTERVAL = 3600  # as in the server: the documents stay fresh all run
    selectors.forget_poll_schedule()
    now = int(time.time() * 1000)
    for source in ("binance", "coinbase"):
        for symbol in SYMBOLS:
            TrackedMarket.objects.get_or_create(source=source, symbol=symbol)
    for source in ("binance", "coinbase"):
        record_quotes(source, [Quote(s, Decimal("50000.5") + i, now) for i, s in enumerate(SYMBOLS)], now)
    Candle.objects.filter(symbol="ETH").delete()
    upsert_candles("binance", "ETH", "1h", sim.series("ETH", "1h", now - 1000 * 3_600_000, now, now))


class Poller(threading.Thread):
    """What the Celery poller does every POLL_INTERVAL, so the run sees the steady state of `make run`:
    new prices stored (their documents rendered again) and the open candles moved (the candle
    documents superseded)."""

    def __init__(self, every: float = 5.0):
        super().__init__(daemon=True)
        self.every, self.stopped = every, threading.Event()

    def run(self) -> None:
        from django.db import connection

        from market.candles import apply_tick_to_open_candles
        from market.domain.prices import Quote
        from market.prices import record_quotes

        i = 0
        while not self.stopped.wait(self.every):
            i += 1
            now = int(time.time() * 1000)
            for source in ("binance", "coinbase"):
                ticks = record_quotes(source, [Quote(s, Decimal("50000.5") + i, now) for s in SYMBOLS], now)
                apply_tick_to_open_candles(ticks)
        connection.close()


def server_time_uncached_ohlc(path: str, rounds: int = 30) -> list[float]:
    """One /api/market/ohlc answer rendered from the database through Django (its document superseded
    before each request, as by a poll), timed in process: the server's own time, no network."""
    from django.test import Client

    from market import documents

    client, times = Client(), []
    for _ in range(rounds):
        redis_client().incr(documents.candles_version_key("binance", "ETH", "1h"))
        start = time.perf_counter()
        assert client.get(path).status_code == 200
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def run(scratch) -> Report:
    if shutil.which("wrk") is None:
        raise SystemExit("the HTTP benchmark needs wrk: `apt-get install wrk` (make bench installs it)")
    from django.conf import settings

    report = Report(f"REST API under load (wrk on the same 2 cores, {SECONDS} s per row; "
                    f"{WORKERS} server processes each for cryptosite and the FastAPI peer)")
    # Intervals of an hour keep the seeded prices and the open candle fresh all run long (served,
    # not fetched), as a running poller keeps them; no exchange is called.
    env = {"POLL_INTERVAL": "3600", "CANDLE_SYNC_INTERVAL": "3600", "WEB_CONCURRENCY": str(WORKERS),
           "API_KEY_TIERS": "bench=100000000/m"}
    # Given back at the end: the benchmarks that run after this one in the same process (alerts
    # makes a key of the default tiers) see the settings they would alone.
    saved_env, saved_tiers = {name: os.environ.get(name) for name in env}, settings.API_KEY_TIERS
    os.environ.update(env)
    seed()
    from apikeys import services as api_keys

    settings.API_KEY_TIERS = {"bench": "100000000/m"}
    api_key = api_keys.create_key("bench", "bench")[1]
    database = settings.DATABASES["default"]["NAME"]
    uvicorn = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning", "--host", "127.0.0.1"]
    ports = {name: free_port() for name in ("ours", "peer", "bare_uvicorn", "bare_daphne")}
    procs = {
        "ours": scratch.spawn([sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(ports["ours"])], **env),
        "peer": scratch.spawn([*uvicorn, "--port", str(ports["peer"]), "--workers", str(WORKERS), "bench.peer_fastapi:app"],
                              PEER_DATABASE=str(database)),
        "bare_uvicorn": scratch.spawn([*uvicorn, "--port", str(ports["bare_uvicorn"]), "bench.bare_asgi:application"]),
        "bare_daphne": scratch.spawn([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(ports["bare_daphne"]),
                                      "bench.bare_asgi:application"]),
    }
    poller = Poller()
    try:
        for name, proc in procs.items():
            wait_for_port("127.0.0.1", ports[name], 60, proc)
        poller.start()
        ours, peer = f"http://127.0.0.1:{ports['ours']}", f"http://127.0.0.1:{ports['peer']}"
        ohlc = "/api/market/ohlc?symbol=ETH&timeframe=1h&limit=1000"
        for path in ("/api/market/price?symbol=BTC", "/prices", "/coins", ohlc):
            wrk(ours + path, 10, 2)  # warm-up: connections, documents, caches
            wrk(peer + path.replace("/api/market/ohlc", "/floor/ohlc"), 10, 2)
        for label, path in (("GET /api/market/price?symbol=BTC (fresh price)", "/api/market/price?symbol=BTC"),
                            ("GET /prices", "/prices"), ("GET /coins", "/coins")):
            for connections in (1, 50):
                a, b = wrk(ours + path, connections), wrk(peer + path, connections)
                report.add(f"{label}, {connections} connection{'s' if connections > 1 else ''}", fmt(a),
                           f"{fmt(b)} (FastAPI peer); ours {ratio(a, b)}")
        price = "/api/market/price?symbol=BTC"
        a, b = wrk(ours + price, 50, header=f"X-API-Key: {api_key}"), wrk(ours + price, 50)
        report.add(f"GET {price} (fresh price) with an API key, 50 connections", fmt(a),
                   f"{fmt(b)} (ours, anonymous); keyed {a['rps'] / b['rps']:.2f}x req/s, p99 {a['p99'] / b['p99']:.2f}x")
        for connections in (1, 10, 50):
            a, b = wrk(ours + ohlc, connections), wrk(peer + "/floor/ohlc?symbol=ETH&timeframe=1h&limit=1000", connections)
            report.add(f"GET {ohlc}, {connections} connection{'s' if connections > 1 else ''}", fmt(a),
                       f"{fmt(b)} (one indexed SELECT + orjson, in the peer); ours {ratio(a, b)}")
        times = server_time_uncached_ohlc(ohlc)
        report.add(f"server time of one {ohlc} rendered from the database (document superseded)",
                   f"p50 {times[len(times) // 2]:.2f} ms, best {times[0]:.2f} ms (in process, through Django)", "–")
        bare_u, bare_d = wrk(f"http://127.0.0.1:{ports['bare_uvicorn']}/", 50), wrk(f"http://127.0.0.1:{ports['bare_daphne']}/", 50)
        report.add("bare ASGI app, fixed body, one process, 50 connections", f"{fmt(bare_u)} (uvicorn, the default server)",
                   f"{fmt(bare_d)} (daphne)")
    finally:
        poller.stopped.set()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(15)
        settings.API_KEY_TIERS = saved_tiers
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return report

"""Shared helpers for the benchmarks: a scratch database and Redis, timing, reporting."""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptosite.stack import BASE_DIR, free_port, redis_server_binary, wait_for_port

RESULTS = BASE_DIR / "bench" / "results"


def raise_fd_limit(wanted: int = 65536) -> None:
    """Room for tens of thousands of sockets (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, hard), max(wanted, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Scratch:
    """A throw-away SQLite database and Redis server, set in the environment before Django starts."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="cryptosite-bench-"))
        self.redis_port = free_port()
        self.redis = subprocess.Popen([redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.redis_port),
                                       "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning"],
                                      stdout=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.redis_port, 15, self.redis)
        self.env = {
            "DATABASE_URL": f"sqlite:///{self.dir / 'bench.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnop",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_SSL_REDIRECT": "false",
            "RATE_LIMIT": "100000000/m",
            "WS_MAX_CONNECTIONS_PER_IP": "0",  # every benchmark client comes from this one address
            "LOG_LEVEL": "WARNING",
            # As `make run` runs it: every process writes its metrics to files (the slower mode).
            "PROMETHEUS_MULTIPROC_DIR": str(self.dir / "metrics"),
        }
        (self.dir / "metrics").mkdir()
        os.environ.update(self.env)
        os.environ.pop("DEMO", None)

    def setup_django(self) -> None:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def spawn(self, args: list[str], **env) -> subprocess.Popen:
        return subprocess.Popen(args, cwd=BASE_DIR, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)

    def close(self) -> None:
        self.redis.terminate()
        self.redis.wait(10)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def served_price_ages(http, markets: list[tuple[str, str]], seconds: float) -> list[float]:
    """Age (ms) of the price `/api/market/price` serves: the middle of the request less the trade time
    it carries, round robin over `markets` ((symbol, source) pairs) for `seconds`."""
    ages, i, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        symbol, source = markets[i % len(markets)]
        i += 1
        sent = time.time()
        body = http.get("/api/market/price", params={"symbol": symbol, "source": source}).json()
        ages.append((sent + time.time()) / 2 * 1000 - body["timestamp"])
        time.sleep(0.013)
    return ages


def summary_ms(samples_s: list[float]) -> str:
    ms = [s * 1000 for s in samples_s]
    return f"p50 {percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms"


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class Report:
    def __init__(self, title: str):
        self.title = title
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, ours: str, baseline: str) -> None:
        self.rows.append((what, ours, baseline))
        print(f"  {what}: {ours}   | baseline: {baseline}", flush=True)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| measure | cryptosite | baseline (same run) |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(lines) + "\n"


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d', time.gmtime())}"


def median(values):
    return statistics.median(values)

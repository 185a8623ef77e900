"""Real-time ingest: the age of the price `/api/market/price` serves, with the exchanges' live feeds
(the sandbox's) against the REST poller alone (the only path before), and the time from a feed's
trade to 1,000 `/ws` subscribers against a bare `websockets` server relaying the same feed."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cryptosite.stack import BASE_DIR, free_port, wait_for_port

from .common import Report, percentile, raise_fd_limit, served_price_ages

SAMPLE_SECONDS = 30
SUBSCRIBERS = 1000
LATENCY_SECONDS = 20
MARKETS = [(s, x) for x in ("binance", "coinbase", "kraken") for s in ("BTC", "ETH")]


class DemoStack:
    """`python -m cryptosite.stack --demo` with the three exchanges, on free ports."""

    def __init__(self, **env):
        self.dir = Path(tempfile.mkdtemp(prefix="cryptosite-ingest-bench-"))
        self.port, self.feed_port = free_port(), free_port()
        self.env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", "SANDBOX_PORT": str(free_port()),
                    "SANDBOX_FEED_PORT": str(self.feed_port), "EMBEDDED_REDIS_PORT": str(free_port()),
                    "DEMO_DATABASE_URL": f"sqlite:///{self.dir / 'demo.sqlite3'}", "EXCHANGES": "binance,coinbase,kraken",
                    "FEEDS": "binance,coinbase,kraken", "BACKFILL_CANDLES": "60", "RATE_LIMIT": "100000000/m",
                    "WEB_CONCURRENCY": "2", "LOG_LEVEL": "WARNING", **env}
        for name in ("REDIS_URL", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"):
            self.env.pop(name, None)
        self.log = open(self.dir / "stack.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "cryptosite.stack", "--demo"], cwd=BASE_DIR, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", self.port, 120, self.proc)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        want = "poll" if env.get("FEEDS") == "" else "feed"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            sources = self.http.get("/health").json().get("sources", {})
            if sources and all(v["path"] == want and not v["stale"] for v in sources.values()):
                break
            time.sleep(0.5)
        time.sleep(5)  # past the start-up backfill

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        self.http.close()
        self.log.close()


def ages_text(ages: list[float]) -> str:
    return (f"p50 {percentile(ages, 50) / 1000:.2f} s, p95 **{percentile(ages, 95) / 1000:.2f} s**, "
            f"max {max(ages) / 1000:.2f} s ({len(ages):,} samples)")




def subscriber_latencies(url: str, kind: str, subscribers: int = SUBSCRIBERS) -> list[float]:
    """One process of lean clients (bench.feedclients), timing what the sockets receive."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.feedclients", url, str(subscribers), str(LATENCY_SECONDS), kind],
                            cwd=BASE_DIR, stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit)
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"clients failed: {line!r}")
    latencies = json.loads(proc.stdout.readline())
    proc.wait(30)
    return latencies


def latency_text(latencies: list[float]) -> str:
    return (f"p50 {percentile(latencies, 50):.1f} ms, p99 **{percentile(latencies, 99):.1f} ms**, "
            f"max {max(latencies):.1f} ms ({len(latencies):,} deliveries)")


def run(scratch) -> Report:
    report = Report("Real-time ingest (the sandbox's feeds, 3 exchanges x 4 markets; POLL_INTERVAL 5 s)")
    polled = DemoStack(FEEDS="")
    try:
        polled_ages = served_price_ages(polled.http, MARKETS, SAMPLE_SECONDS)
    finally:
        polled.stop()
    fed = DemoStack()
    try:
        fed_ages = served_price_ages(fed.http, MARKETS, SAMPLE_SECONDS)
    finally:
        fed.stop()
    report.add("age of the price `/api/market/price` serves (TICK_MIN_INTERVAL 1 s)", ages_text(fed_ages),
               f"REST poller alone: {ages_text(polled_ages)}")

    # Every trade stored at once (a trade a second per market, TICK_MIN_INTERVAL 0.5 s): the time
    # from the trade to the subscriber, throttling aside.
    fed = DemoStack(SANDBOX_TRADE_PERIOD="1.0", TICK_MIN_INTERVAL="0.5")
    relay_port = free_port()
    relay = None
    try:
        alone = subscriber_latencies(f"ws://127.0.0.1:{fed.port}/ws", "ours", 1)
        ours = subscriber_latencies(f"ws://127.0.0.1:{fed.port}/ws", "ours")
        relay = subprocess.Popen([sys.executable, "-m", "bench.feed_relay",
                                  f"ws://127.0.0.1:{fed.feed_port}/binance/stream", str(relay_port)], cwd=BASE_DIR)
        wait_for_port("127.0.0.1", relay_port, 30, relay)
        bare = subscriber_latencies(f"ws://127.0.0.1:{relay_port}", "relay")
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(10)
        fed.stop()
    report.add("feed trade to one `/ws` subscriber (published at once, stored alongside: the pipeline alone)", latency_text(alone), "–")
    report.add(f"feed trade to {SUBSCRIBERS:,} `/ws` subscribers (published at once, stored alongside)", latency_text(ours),
               f"bare `websockets` relay of the same feed, nothing stored: {latency_text(bare)}; "
               f"ours p99 {percentile(ours, 99) / max(percentile(bare, 99), 0.1):.1f}x")
    return report

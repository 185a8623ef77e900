"""Capacity: how many markets one ingest process (`python -m ingest`) holds, against the sandbox's
feeds on loopback, at 30, 120 and 480 markets spread evenly over the three native feeds (Binance:
trades and 8 candle timeframes in the feed; Kraken: trades and 7; Coinbase: trades only, so the
ingest moves its open candles itself), each market trading every TRADE_PERIOD seconds.

Each size is a fresh install set up as an operator sets one up: EXCHANGES, FEEDS and SYMBOLS in the
environment, the exchanges' URLs pointed at the sandbox (as at a mirror), and a first `migrate`
that seeds the tracked markets from EXCHANGES x SYMBOLS. Then one web process (for
`/api/market/price`) and one ingest process; nothing else (no Celery: the poller never runs, so
every price served was stored or kept by the ingest, unless the web process fetched one from the
REST API because the stored one was stale, which the sandbox's request counts show).

Over SAMPLE_SECONDS once every feed is live and WARM_SECONDS more have passed: the ingest's CPU
(utime + stime of /proc/<pid>/stat, every thread), its RSS, the trades it received (the sandbox's
trade rounds, counted on a connection of our own, x markets: the sandbox's sends wait for a slow
reader, so a round counted is a round every connection took), the feed messages it read (its own
counter, through /metrics), and the age of the price `/api/market/price` serves (round robin over
every market). Then the floor, alone: one process of bare `websockets` clients on the same feeds,
markets and streams that only json.loads each message (bench.capacity_floor)."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cryptosite.stack import BASE_DIR, free_port, redis_server_binary, wait_for_port

from .bench_breadth import RoundCounter
from .common import Scratch, percentile, served_price_ages

SIZES = (30, 120, 480)  # markets, spread evenly over EXCHANGES
EXCHANGES = ("binance", "coinbase", "kraken")
FEED_PATHS = {"binance": "/binance/stream", "coinbase": "/coinbase", "kraken": "/kraken/v2"}
TRADE_PERIOD = 0.1  # the sandbox's default (`make demo`): every market trades ten times a second
WARM_SECONDS = 10  # after every feed is live: the REST resync, the first writes, the open candles
SAMPLE_SECONDS = 30
FLOOR_WARM_SECONDS = 5
FLOOR_SECONDS = 15
TARGET = 0.70  # of one core: the load an operator would plan for, headroom for bursts and reconnects
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system time of a process, every thread (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (/proc/stat's first line)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


# --- the pieces ---------------------------------------------------------------------------------
class Sandbox:
    """The sandbox exchange, listing enough symbols for the largest size, for every size."""

    def __init__(self, scratch: Scratch, symbols: int):
        self.port, self.feed_port = free_port(), free_port()
        self.proc = scratch.spawn([sys.executable, "manage.py", "sandbox_exchange", "--port", str(self.port), "--feed-port",
                                   str(self.feed_port), "--trade-period", str(TRADE_PERIOD), "--symbols", str(symbols)],
                                  SANDBOX="1")
        wait_for_port("127.0.0.1", self.port, 30, self.proc)
        wait_for_port("127.0.0.1", self.feed_port, 30, self.proc)
        self.rest, self.feeds = f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.feed_port}"

    def price_requests(self) -> int:
        """Requests for the latest prices the REST API has answered: the web process's fallbacks (a stored
        price gone stale) and the ingest's resyncs (a reconnect, a gap in a market's trade ids)."""
        return sum(httpx.get(f"{self.rest}/_sandbox/stats", timeout=10).json()["price_requests"].values())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Install:
    """A fresh install for one size: its own database and Redis, migrated with the operator's settings,
    one web process and one ingest process."""

    def __init__(self, sandbox: Sandbox, symbols: list[str]):
        self.dir = Path(tempfile.mkdtemp(prefix="cryptosite-capacity-"))
        self.procs: list[subprocess.Popen] = []
        redis_port, self.port = free_port(), free_port()
        self.redis = self._spawn("redis", os.environ, [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(redis_port), "--save",
                                           "", "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning"])
        wait_for_port("127.0.0.1", redis_port, 15, self.redis)
        (self.dir / "metrics").mkdir()
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("DEMO", "SANDBOX")},
                    "DATABASE_URL": f"sqlite:///{self.dir / 'capacity.sqlite3'}", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                    "PROMETHEUS_MULTIPROC_DIR": str(self.dir / "metrics"), "EXCHANGES": ",".join(EXCHANGES),
                    "FEEDS": ",".join(EXCHANGES), "SYMBOLS": ",".join(symbols), "WEB_CONCURRENCY": "1", "LOG_LEVEL": "WARNING",
                    **{f"{x.upper()}_API_URL": f"{sandbox.rest}/{x}" for x in EXCHANGES},
                    **{f"{x.upper()}_FEED_URL": sandbox.feeds + FEED_PATHS[x] for x in EXCHANGES}}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        self.web = self._spawn("web", self.env, [sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(self.port)])
        wait_for_port("127.0.0.1", self.port, 60, self.web)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.ingest = self._spawn("ingest", self.env, [sys.executable, "-m", "ingest"])

    def _spawn(self, name: str, env, args: list[str]) -> subprocess.Popen:
        with open(self.dir / f"{name}.log", "w") as log:
            proc = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_live(self, timeout: float = 120) -> float:
        """Seconds until /health shows every exchange's feed as the live path."""
        started = time.monotonic()
        sources: dict = {}
        while time.monotonic() - started < timeout:
            if self.ingest.poll() is not None:
                raise RuntimeError(f"the ingest process exited ({self.ingest.returncode}): see {self.dir / 'ingest.log'}")
            sources = self.http.get("/health").json().get("sources", {})
            if set(EXCHANGES) <= set(sources) and all(sources[x]["path"] == "feed" and not sources[x]["stale"] for x in EXCHANGES):
                return time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError(f"the feeds did not go live within {timeout:.0f} s: {sources}")

    def feed_messages(self) -> int:
        """The ingest's own count of feed messages read (every exchange)."""
        text = self.http.get("/metrics").text
        return int(sum(float(v) for v in re.findall(r'^cryptosite_feed_messages_total\{[^}]*\} (\S+)$', text, re.M)))

    def stop(self) -> None:
        self.http.close()
        for proc in reversed(self.procs):  # ingest, web, Redis
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT if proc is self.ingest else signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        for path in self.dir.glob("capacity.sqlite3*"):
            path.unlink()  # the logs stay, for a size that went wrong


# --- one size -----------------------------------------------------------------------------------
@dataclass
class Row:
    markets: int
    offered: float = 0.0  # trades/s the sandbox sent the ingest
    messages: float = 0.0  # feed messages/s the ingest read
    cpu: float = 0.0  # of one core
    rss: float = 0.0  # MB at the window's end
    ages: list[float] | None = None  # ms
    rest_prices: int = 0  # REST requests for the latest prices in the window (fallbacks, resyncs)
    sandbox_cpu: float = 0.0
    others_cpu: float = 0.0  # of one core: every process on the machine but the ingest and the sandbox
    live_after: float = 0.0
    floor_trades: float = 0.0  # trades/s
    floor_cpu: float = 0.0  # of one core
    floor_rss: float = 0.0

    @property
    def kept_up(self) -> bool:
        """Received nine tenths of what the floor received alone, and served prices under a second old (p95)."""
        return self.offered >= 0.9 * self.floor_trades and percentile(self.ages, 95) < 1000

    @property
    def per_trade(self) -> float:  # µs
        return self.cpu / self.offered * 1e6

    @property
    def floor_per_trade(self) -> float:
        return self.floor_cpu / self.floor_trades * 1e6


def measure(sandbox: Sandbox, scratch: Scratch, size: int, symbols: list[str]) -> Row:
    row = Row(size)
    install = Install(sandbox, symbols)
    counter = RoundCounter(f"{sandbox.feeds}/binance/stream?streams={symbols[0].lower()}usdt@aggTrade")
    try:
        row.live_after = install.wait_live()
        time.sleep(WARM_SECONDS)
        pid = install.ingest.pid
        cpu0, box0, messages0, fallbacks0 = cpu_seconds(pid), cpu_seconds(sandbox.proc.pid), install.feed_messages(), sandbox.price_requests()
        busy0 = machine_busy()[0]
        start = time.monotonic()
        ages = served_price_ages(install.http, [(s, x) for s in symbols for x in EXCHANGES], SAMPLE_SECONDS)
        seconds = time.monotonic() - start
        row.cpu = (cpu_seconds(pid) - cpu0) / seconds
        row.sandbox_cpu = (cpu_seconds(sandbox.proc.pid) - box0) / seconds
        row.others_cpu = (machine_busy()[0] - busy0) / seconds - row.cpu - row.sandbox_cpu
        row.messages = (install.feed_messages() - messages0) / seconds
        row.rest_prices = sandbox.price_requests() - fallbacks0
        row.offered = counter.between(start, start + seconds) * size / seconds
        row.rss, row.ages = rss_mb(pid), ages
    finally:
        counter.close()
        install.stop()
    floor = subprocess.run([sys.executable, "-m", "bench.capacity_floor", sandbox.feeds, ",".join(EXCHANGES), ",".join(symbols),
                            str(FLOOR_WARM_SECONDS), str(FLOOR_SECONDS)], cwd=BASE_DIR, capture_output=True, text=True, check=True)
    result = json.loads(floor.stdout.strip().splitlines()[-1])
    row.floor_trades, row.floor_cpu, row.floor_rss = (result["trades"] / result["seconds"], result["cpu"] / result["seconds"],
                                                      result["rss_mb"])
    print(f"  {size} markets: {row.offered:,.0f} trades/s, ingest {row.cpu * 100:.0f} % of a core ({row.per_trade:.0f} µs a trade), "
          f"RSS {row.rss:.0f} MB, age p50/p95/p99 {percentile(ages, 50):.0f}/{percentile(ages, 95):.0f}/{percentile(ages, 99):.0f} ms, "
          f"REST price requests {row.rest_prices}, sandbox {row.sandbox_cpu * 100:.0f} %, the rest of the machine "
          f"{row.others_cpu * 100:.0f} %; floor {row.floor_trades:,.0f} trades/s at "
          f"{row.floor_cpu * 100:.0f} % ({row.floor_per_trade:.0f} µs a trade)", flush=True)
    return row


# --- the report ---------------------------------------------------------------------------------
def fit(rows: list[Row]) -> tuple[float, float, list[Row]]:
    """CPU (of one core) = a + b x markets, least squares over the sizes the ingest kept up with (Row.kept_up:
    a size it fell behind on measures what it got of the cores, not what it needed)."""
    used = [r for r in rows if r.kept_up] or rows[:1]
    if len(used) == 1:
        return 0.0, used[0].cpu / used[0].markets, used
    n = len(used)
    mx, my = sum(r.markets for r in used) / n, sum(r.cpu for r in used) / n
    b = sum((r.markets - mx) * (r.cpu - my) for r in used) / sum((r.markets - mx) ** 2 for r in used)
    return my - b * mx, b, used


class CapacityReport:
    def __init__(self, rows: list[Row]):
        self.title = f"Capacity: one ingest process, {'/'.join(EXCHANGES)} feeds of the sandbox"
        self.rows_ = rows

    def holds(self) -> int:
        a, b, _ = fit(self.rows_)
        return int((TARGET - a) / b)

    def table(self) -> list[str]:
        lines = ["| markets (per exchange) | trades/s offered and received | feed messages/s read | ingest CPU (% of one core) "
                 "| CPU per trade | trades/s per core of ingest CPU | served price age p50 / p95 / p99 | ingest RSS "
                 "| floor: bare `websockets` + json.loads | ingest / floor per trade | sandbox CPU; the rest of the machine |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows_:
            lines.append(
                f"| {r.markets} ({r.markets // len(EXCHANGES)}) | {r.offered:,.0f} (nominal {r.markets / TRADE_PERIOD:,.0f}) "
                f"| {r.messages:,.0f} | {r.cpu * 100:.0f} % "
                f"| {r.per_trade:.0f} µs | {r.offered / r.cpu:,.0f} | {percentile(r.ages, 50):.0f} / {percentile(r.ages, 95):.0f} / "
                f"{percentile(r.ages, 99):.0f} ms | {r.rss:.0f} MB | {r.floor_trades:,.0f} trades/s at {r.floor_cpu * 100:.0f} % "
                f"of a core: {r.floor_per_trade:.0f} µs a trade, {r.floor_trades / r.floor_cpu:,.0f} trades/s per core, "
                f"{r.floor_rss:.0f} MB | **{r.per_trade / r.floor_per_trade:.1f}x** | {r.sandbox_cpu * 100:.0f} %; "
                f"{r.others_cpu * 100:.0f} % |")
        return lines

    def summary(self) -> str:
        a, b, used = fit(self.rows_)
        rate = sum(r.offered / r.markets for r in used) / len(used)
        text = (f"**Markets one ingest process holds per core**: CPU = {a * 100:.1f} % + {b * 100:.3f} % per market (least "
                f"squares over {', '.join(str(r.markets) for r in used)} markets, where the ingest kept up), so "
                f"{TARGET * 100:.0f} % of one core is reached at about **{self.holds():,} markets** at the measured "
                f"{rate:.1f} trades/s per market; a linear extrapolation from the measured CPU per market, not a measurement")
        over = [r for r in self.rows_ if r not in used]
        if over:
            text += (f" ({', '.join(str(r.markets) for r in over)} markets left out of the fit: the ingest fell behind there, "
                     "receiving less than nine tenths of the trades the floor received alone or serving prices over a second "
                     "old at p95")
            busy = [r for r in over if r.cpu + r.sandbox_cpu + r.others_cpu >= 0.9 * (os.cpu_count() or 1)]
            if busy:
                text += ("; the machine's cores were busy meanwhile ("
                         + ", ".join(f"{(r.cpu + r.sandbox_cpu + r.others_cpu) * 100:.0f} % at {r.markets}" for r in busy)
                         + f" of {(os.cpu_count() or 1) * 100} %), so there it measures the CPU the ingest got, not what it "
                         f"needed: the fit asks {(fit(self.rows_)[0] + fit(self.rows_)[1] * busy[0].markets) * 100:.0f} % of a "
                         f"core at {busy[0].markets}")
            text += ")"
        return text + "."

    def markdown(self) -> str:
        rest = ", ".join(str(r.rest_prices) for r in self.rows_)
        return "\n".join([
            f"### {self.title}", "",
            f"One ingest process (`python -m ingest`, every feed on one event loop) against the sandbox's feeds on loopback, "
            f"the markets spread evenly over {', '.join(EXCHANGES)} (Binance's and Kraken's feeds carry candles, 8 and 7 "
            f"timeframes a market pushed every 2 s; Coinbase's carries trades only, and the ingest moves its open candles "
            f"with each stored price). Every market trades every {TRADE_PERIOD * 1000:.0f} ms (the demo's rate), so the "
            "load grows with the markets; trades/s are what the sandbox sent and the ingest received (its trade rounds, "
            "counted on a connection of our own, x markets: below the nominal rate when a round takes the sandbox longer "
            "than the period). The sandbox is one Python process on the same 2 cores; the last column's rest of the machine "
            "(from /proc/stat, less the ingest and the sandbox) is the web process, Redis, this sampler, and anything "
            "else that ran on the machine meanwhile. "
            "Each size is a fresh install set up as an operator does: "
            "EXCHANGES, FEEDS and SYMBOLS in the environment, the first `migrate` seeding the tracked markets, one web "
            "process and one ingest process, no Celery. Over "
            f"{SAMPLE_SECONDS} s, {WARM_SECONDS} s after every feed is live: the ingest's CPU (utime + stime of "
            "/proc/<pid>/stat, every thread, over the window), its RSS at the end, and the age of the price "
            "`/api/market/price?symbol=..&source=..` serves (the middle of the request less the price's trade time, "
            f"round robin over every market). REST requests for the latest prices in the window (a web process's fallback "
            f"when a stored price is stale, or an ingest's resync after a gap): {rest}. The floor, run alone right after "
            "on the same feeds, markets and streams: one process of bare "
            f"`websockets` clients (uvloop, as the ingest) that only `json.loads` each message ({FLOOR_SECONDS} s).", "",
            *self.table(), "", self.summary(), ""])


def run(scratch: Scratch) -> CapacityReport:
    from sandbox import simulation as sim

    per_exchange = max(SIZES) // len(EXCHANGES)
    sandbox = Sandbox(scratch, per_exchange)
    rows = []
    try:
        for size in SIZES:
            rows.append(measure(sandbox, scratch, size, list(sim.symbols(per_exchange)[: size // len(EXCHANGES)])))
    finally:
        sandbox.stop()
    report = CapacityReport(rows)
    print("  " + report.summary(), flush=True)
    return report

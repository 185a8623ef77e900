"""Streaming: time from a price being published (after its commit) to its arrival at N
subscribers of one symbol, messages/s delivered, and memory per idle connection; the same
clients against a bare `websockets` broadcast server in the same run."""

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import websockets

from cryptosite.stack import free_port, wait_for_port

from .common import Report, percentile, raise_fd_limit

SIZES = (100, 1000, 5000)
ROUNDS = 5


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_clients(url: str, n: int, protocol: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "bench.wsclients", url, str(n), str(ROUNDS), protocol],
                            stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit)
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"clients failed: {line!r}")
    return proc


def finish(proc: subprocess.Popen) -> list[float]:
    out = proc.stdout.readline()
    proc.wait(30)
    return json.loads(out)["latencies"]


def publish_ours(i: int) -> float:
    from market.ticks import StoredTick
    from streaming.broadcast import publish

    now = time.time() * 1000
    publish(ticks=[StoredTick("binance", "BTC", Decimal(50000 + i), int(now), int(now))])
    return now


async def publish_bare(port: int, i: int) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
        now = int(time.time() * 1000)
        await ws.send(json.dumps({"publish": {"type": "price_update", "symbol": "BTC", "price": 50000 + i,
                                              "timestamp": now, "source": "binance"}}))
        await asyncio.sleep(0.05)


def describe(latencies: list[float], n: int) -> str:
    """Latency percentiles, delivery, and the burst rate: N messages over the slowest one's latency."""
    delivered = len(latencies)
    slowest = max(latencies)
    return (f"p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms, slowest {slowest:.0f} ms; "
            f"{delivered}/{n * ROUNDS} delivered, {n / max(slowest, 1) * 1000:,.0f} msg/s in a burst")


def run(scratch) -> Report:
    report = Report(f"Streaming fan-out ({ROUNDS} updates to N subscribers of one symbol)")
    ours_port, bare_port = free_port(), free_port()
    daphne = scratch.spawn([sys.executable, "-m", "cryptosite.serve", "--websocket_connect_timeout", "30", "-b", "127.0.0.1",
                            "-p", str(ours_port), "cryptosite.asgi:application"],
                           WS_HEARTBEAT_SECONDS="3600")
    bare = scratch.spawn([sys.executable, "-m", "bench.bare_ws", str(bare_port)])
    try:
        wait_for_port("127.0.0.1", ours_port, 60, daphne)
        wait_for_port("127.0.0.1", bare_port, 30, bare)
        for n in SIZES:
            try:
                report.add(f"{n:,} subscribers", *measure(n, daphne, bare, ours_port, bare_port))
            except Exception as exc:  # report the failure, keep the other sizes
                report.add(f"{n:,} subscribers", f"failed: {exc}", "–")
    finally:
        for proc in (daphne, bare):
            proc.terminate()
            proc.wait(15)
    return report


def measure(n: int, daphne, bare, ours_port: int, bare_port: int) -> tuple[str, str]:
    before = rss_kib(daphne.pid)
    clients = start_clients(f"ws://127.0.0.1:{ours_port}/ws", n, "cryptosite")
    per_conn = (rss_kib(daphne.pid) - before) / n
    for i in range(ROUNDS):
        publish_ours(i)
        time.sleep(1 + n / 2000)
    ours = describe(finish(clients), n) + f"; {per_conn:.0f} KiB per idle connection"

    before = rss_kib(bare.pid)
    clients = start_clients(f"ws://127.0.0.1:{bare_port}", n, "bare")
    bare_conn = (rss_kib(bare.pid) - before) / n
    for i in range(ROUNDS):
        asyncio.run(publish_bare(bare_port, i))
        time.sleep(1 + n / 2000)
    theirs = describe(finish(clients), n) + f"; {bare_conn:.0f} KiB per idle connection"
    return ours, theirs

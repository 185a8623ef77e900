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

from cryptosite.stack import descendants, free_port, wait_for_port

from .common import Report, percentile, raise_fd_limit

SIZES = (100, 1000, 5000, 20000)
ROUNDS = 5


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (the server's worker processes)."""
    total = 0
    for proc in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


PER_PROCESS = 9000  # this machine allows 20,000 open files per process, and no more


def start_clients(url: str, n: int, protocol: str) -> list[subprocess.Popen]:
    """N subscribers, in as many client processes as the descriptor limit needs; returns once all
    of them are subscribed."""
    shares = [min(PER_PROCESS, n - start) for start in range(0, n, PER_PROCESS)]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.wsclients", url, str(share), str(ROUNDS), protocol],
                              stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit) for share in shares]
    for proc in procs:
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"clients failed: {line!r}")
    return procs


def finish(procs: list[subprocess.Popen]) -> list[float]:
    latencies = []
    for proc in procs:
        out = proc.stdout.readline()
        proc.wait(60)
        latencies += json.loads(out)["latencies"]
    return latencies


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
    server = scratch.spawn([sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(ours_port)],
                           WS_HEARTBEAT_SECONDS="3600")
    bare = scratch.spawn([sys.executable, "-m", "bench.bare_ws", str(bare_port)])
    try:
        wait_for_port("127.0.0.1", ours_port, 60, server)
        wait_for_port("127.0.0.1", bare_port, 30, bare)
        warm = start_clients(f"ws://127.0.0.1:{ours_port}/ws", 100, "cryptosite")  # warm-up, not reported
        for i in range(ROUNDS):
            publish_ours(i)
            time.sleep(0.5)
        finish(warm)
        for n in SIZES:
            try:
                report.add(f"{n:,} subscribers", *measure(n, server, bare, ours_port, bare_port))
            except Exception as exc:  # report the failure, keep the other sizes
                report.add(f"{n:,} subscribers", f"failed: {exc}", "–")
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(15)
    return report


def measure(n: int, server, bare, ours_port: int, bare_port: int) -> tuple[str, str]:
    before = rss_kib(server.pid)
    clients = start_clients(f"ws://127.0.0.1:{ours_port}/ws", n, "cryptosite")
    per_conn = (rss_kib(server.pid) - before) / n
    for i in range(ROUNDS):
        publish_ours(i)
        time.sleep(1 + n / 2000)
    ours_latencies = finish(clients)
    ours = describe(ours_latencies, n) + f"; {per_conn:.0f} KiB per idle connection"

    if n > 19_000:
        return ours, "not measured: one process cannot hold 20,000 sockets under this machine's limit of 20,000 open files"
    before = rss_kib(bare.pid)
    clients = start_clients(f"ws://127.0.0.1:{bare_port}", n, "bare")
    bare_conn = (rss_kib(bare.pid) - before) / n
    for i in range(ROUNDS):
        asyncio.run(publish_bare(bare_port, i))
        time.sleep(1 + n / 2000)
    bare_latencies = finish(clients)
    theirs = describe(bare_latencies, n) + f"; {bare_conn:.0f} KiB per idle connection"
    if ours_latencies and bare_latencies:
        theirs += f"; ours p99 **{percentile(ours_latencies, 99) / max(percentile(bare_latencies, 99), 1):.2f}x**"
    return ours, theirs

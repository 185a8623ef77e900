"""Soak: SOAK_SUBSCRIBERS (1,000) WebSocket subscribers of one symbol for SOAK_SECONDS (600) with a
new price every second, as the poller stores them at POLL_INTERVAL=1: messages lost (goal 0),
received twice (goal 0), out of order, and the server's memory growth (goal at most 10%).
Not in the default run (it takes ten minutes): python -m bench soak"""

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

from cryptosite.stack import free_port, wait_for_port

from .bench_stream import rss_kib
from .common import Report, raise_fd_limit

SUBSCRIBERS = int(os.environ.get("SOAK_SUBSCRIBERS", "1000"))
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))


def publish(price: int) -> None:
    from market.ticks import StoredTick
    from streaming.broadcast import publish as broadcast

    now = int(time.time() * 1000)
    broadcast(ticks=[StoredTick("binance", "BTC", Decimal(price), now, now)])


def run(scratch) -> Report:
    report = Report(f"Soak: {SUBSCRIBERS:,} subscribers of one symbol, a price a second for {SECONDS // 60} minutes")
    port = free_port()
    server = scratch.spawn([sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(port)],
                           WS_HEARTBEAT_SECONDS="30")
    clients = None
    try:
        wait_for_port("127.0.0.1", port, 60, server)
        clients = subprocess.Popen([sys.executable, "-m", "bench.soakclients", f"ws://127.0.0.1:{port}/ws", str(SUBSCRIBERS)],
                                   stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit)
        if clients.stdout.readline().strip() != "ready":
            raise RuntimeError("the clients did not all subscribe")
        time.sleep(2)
        start_rss, start = rss_kib(server.pid), time.monotonic()
        sent = 0
        while time.monotonic() - start < SECONDS:
            sent += 1
            publish(sent)
            time.sleep(max(0.0, start + sent - time.monotonic()))
        end_rss = rss_kib(server.pid)
        time.sleep(2)
        publish(-1)
        received = json.loads(clients.stdout.readline())
        clients.wait(60)
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
        server.terminate()
        server.wait(20)
    expected = list(range(1, sent + 1))
    lost = sum(len(set(expected) - set(prices)) for prices in received)
    duplicates = sum(len(prices) - len(set(prices)) for prices in received)
    disordered = sum(prices != sorted(prices) for prices in received)
    report.add("prices published", f"{sent:,} (one a second)", "–")
    report.add("messages lost", f"{lost:,} of {sent * len(received):,}", "goal 0")
    report.add("messages received twice", f"{duplicates:,}", "goal 0")
    report.add("subscribers that saw prices out of order", f"{disordered:,}", "goal 0")
    report.add("server memory (all processes)", f"{start_rss / 1024:,.0f} MiB -> {end_rss / 1024:,.0f} MiB "
               f"({(end_rss - start_rss) / start_rss * 100:+.1f}%)", "goal at most +10%")
    return report

"""WEB_CONCURRENCY server processes on one port, as `make run` starts them: WebSocket clients on
each process receive the same updates, and a client's rate-limit budget is one across them."""

import json
import os
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from market.ticks import StoredTick
from streaming.broadcast import publish
from tests.e2e.conftest import child_pids, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_processes(tmp_path):
    with serving(tmp_path, WEB_CONCURRENCY="2", RATE_LIMIT="200/d") as (port, proc):
        deadline = time.monotonic() + 60
        while len(child_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield port, proc


def connections_per_process(port: int, pids: set[int]) -> dict[int, int]:
    """Established connections to `port` held by each process (its sockets' inodes in /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # local port, ESTABLISHED
            inodes.add(fields[9])
    out = {}
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        out[pid] = held
    return out


def both_serve(port: int, proc) -> bool:
    held = connections_per_process(port, serving_pids(proc))
    return len(held) == 2 and all(count > 0 for count in held.values())


def serving_pids(proc) -> set[int]:
    return {pid for pid in child_pids(proc.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def test_subscribers_on_every_process_receive_the_same_updates(two_processes):
    port, proc = two_processes
    with ExitStack() as opened:
        clients = []
        # The kernel picks which process accepts each connection: connect until both hold some.
        while len(clients) < 4 or not both_serve(port, proc):
            assert len(clients) < 200, "every connection went to one process"
            ws = opened.enter_context(connect(f"ws://127.0.0.1:{port}/ws", max_size=None))
            assert json.loads(ws.recv(10))["type"] == "connected"
            ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
            subscribed = json.loads(ws.recv(10))
            assert subscribed["type"] == "subscribed"
            clients.append((ws, subscribed["seq"]))
        time.sleep(0.5)
        now = int(time.time() * 1000)
        publish(ticks=[StoredTick("binance", "BTC", Decimal(60000 + i), now + i, now + i) for i in range(20)])
        for ws, seq in clients:
            prices = []
            while len(prices) < 20:
                message = json.loads(ws.recv(10))
                assert message["seq"] == seq + 1  # every message numbered, none missing
                seq = message["seq"]
                if message["type"] == "price_update" and message["timestamp"] >= now:
                    prices.append(message["price"])
            assert prices == [60000 + i for i in range(20)]


def test_one_clients_budget_is_shared_by_every_process(two_processes):
    port, proc = two_processes
    sessions = []
    try:
        # One client, many connections, spread by the kernel over both processes: 200 requests in all.
        while len(sessions) < 4 or not both_serve(port, proc):
            assert len(sessions) < 100, "every connection went to one process"
            sessions.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10))
            assert sessions[-1].get("/coins").status_code == 200
        for i in range(len(sessions), 200):  # the rest round-robin over both processes, edge and Django
            response = sessions[i % len(sessions)].get("/coins" if i % 2 else "/api/market/ohlc?symbol=BTC&timeframe=2h")
            assert response.status_code == (200 if i % 2 else 400)
            assert response.headers["x-ratelimit-remaining"] == str(200 - i - 1)  # each counted once, in one budget
        limited = sessions[0].get("/coins")
        assert limited.status_code == 429 and limited.headers["x-ratelimit-remaining"] == "0"
    finally:
        for session in sessions:
            session.close()

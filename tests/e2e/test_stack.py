"""The real system, started the way `make demo` starts it, used over HTTP and WebSocket the way
the original systems' clients use it."""

import asyncio
import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.sync import client as websockets_sync

from market.domain.timeframes import TIMEFRAMES

from .conftest import RunningStack, alive, child_pids

pytestmark = pytest.mark.e2e


def test_health_is_ok_with_every_source_fresh(stack):
    body = stack.http.get("/health").json()
    assert body["status"] == "ok" and body["demo"] is True
    assert set(body["sources"]) == {"binance", "coinbase"}
    assert all(not s["stale"] for s in body["sources"].values())


def test_prices_show_both_exchanges_for_every_tracked_symbol_and_refresh(stack):
    first = stack.http.get("/prices").json()
    assert set(first) == {"Binance", "Coinbase"}
    for source in first.values():
        assert set(source) == {"BTC", "ETH", "SOL", "ADA"}
    deadline = time.monotonic() + 5  # five poll intervals
    while (second := stack.http.get("/prices").json())["Binance"]["BTC"]["timestamp"] == first["Binance"]["BTC"]["timestamp"]:
        assert time.monotonic() < deadline, "prices did not refresh"
        time.sleep(0.3)
    assert second["Coinbase"]["ETH"]["price"] > 0
    assert stack.http.get("/coins").json() == {"Binance": ["ADA", "BTC", "ETH", "SOL"], "Coinbase": ["ADA", "BTC", "ETH", "SOL"]}
    # At least two polls have been stored by now (the board refreshed once).
    history = stack.http.get("/history", params={"symbol": "BTC", "source": "Binance", "limit": 2}).json()
    assert len(history) == 2 and history[0]["timestamp"] > history[1]["timestamp"]


def test_metrics_add_up_every_process_web_and_worker(stack):
    """The worker's polls and both web processes' requests, in one scrape (the stack's host is this
    machine, so no token is needed)."""
    for _ in range(10):
        assert stack.http.get("/api/market/price", params={"symbol": "BTC"}).status_code == 200
    text = stack.http.get("/metrics").text
    polls = re.search(r'^cryptosite_poll_duration_seconds_count\{exchange="binance"\} ([0-9.e+]+)$', text, re.M)
    assert polls and float(polls.group(1)) >= 1  # counted in the Celery worker's process
    served = re.search(r'^cryptosite_http_requests_total\{endpoint="/api/market/price",method="GET",status="200"\} ([0-9.e+]+)$',
                       text, re.M)
    assert served and float(served.group(1)) >= 10
    assert re.search(r'^cryptosite_price_age_seconds\{source="coinbase",symbol="ETH"\} ', text, re.M)


def test_the_original_readme_curl_examples_return_their_documented_shapes(stack):
    price = stack.http.get("/api/market/price", params={"symbol": "BTC"}).json()
    assert set(price) >= {"symbol", "price", "timestamp", "source"} and price["source"] == "binance"
    ohlc = stack.http.get("/api/market/ohlc", params={"symbol": "ETH", "timeframe": "1h", "limit": 10}).json()
    assert ohlc["symbol"] == "ETH" and ohlc["timeframe"] == "1h" and len(ohlc["ohlc"]) == 10
    assert set(ohlc["ohlc"][0]) >= {"timestamp", "open", "high", "low", "close", "volume"}
    sentiment = stack.http.post("/api/sentiment/analyze", json={"text": "Bitcoin is surging! Great bullish momentum."}).json()
    assert sentiment["sentiment"] == "Bullish" and sentiment["keywords"]["total"] == 2
    bad = stack.http.get("/api/market/ohlc", params={"symbol": "ETH", "timeframe": "2h"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("Invalid timeframe: 2h")
    missing = stack.http.get("/api/market/price", params={"symbol": "INVALID_SYMBOL"})
    assert missing.status_code == 404 and missing.json()["error"] == "Symbol not found: INVALID_SYMBOL"


def test_the_transformer_engine_answers_from_the_served_processes(stack):
    """Each server process loads the model on its first transformer request, after the fork."""
    texts = ["Bitcoin is surging! Great bullish momentum.", "Exchange hacked, withdrawals halted, BTC plunges"]
    fast = stack.http.post("/api/sentiment/analyze", json={"texts": texts}).json()["results"]
    for _ in range(4):  # whichever process answers
        response = stack.http.post("/api/sentiment/analyze", json={"texts": texts, "engine": "transformer"})
        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["sentiment"] for r in results] == ["Bullish", "Bearish"]
        assert [r["keywords"] for r in results] == [r["keywords"] for r in fast]


@pytest.mark.parametrize(
    "fault,status",
    [({"mode": "error", "status": 503}, 502), ({"mode": "malformed"}, 502), ({"mode": "drop"}, 503),
     ({"mode": "ratelimit", "retry_after": 1}, 503), ({"mode": "timeout", "latency": 4}, 504)],
)
def test_every_upstream_error_row_of_the_contract_over_the_real_server(stack, fault, status):
    stack.sandbox("POST", "/_sandbox/faults", json={"exchange": "coinbase", **fault})
    try:
        # An untracked symbol has no stored price, so it is fetched live from the faulty exchange.
        response = stack.http.get("/api/market/price", params={"symbol": "XRP", "source": "coinbase"})
    finally:
        stack.sandbox("DELETE", "/_sandbox/faults")
    assert response.status_code == status
    assert set(response.json()) >= {"error", "timestamp"}
    time.sleep(1.1)  # let a rate-limit back-off expire before the next case


@pytest.mark.parametrize(
    "method,path,kwargs,status",
    [("GET", "/api/market/price", {}, 400), ("GET", "/api/market/ohlc?symbol=ETH&limit=5000", {}, 400),
     ("POST", "/api/sentiment/analyze", {"content": b"{oops"}, 400), ("POST", "/api/sentiment/analyze", {"json": {"text": " "}}, 400),
     ("GET", "/api/market/price?symbol=BTC&source=nowhere", {}, 404), ("GET", "/no/such/path", {}, 404),
     ("DELETE", "/api/market/price?symbol=BTC", {}, 405), ("POST", "/api/sentiment/analyze", {"content": b"x" * 70_000}, 413)],
)
def test_every_client_error_row_of_the_contract_over_the_real_server(stack, method, path, kwargs, status):
    response = stack.http.request(method, path, **kwargs)
    assert response.status_code == status
    assert set(response.json()) >= {"error", "timestamp"}


@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_candles_of_every_timeframe_have_no_gaps(stack, timeframe):
    ohlc = stack.http.get("/api/market/ohlc", params={"symbol": "BTC", "timeframe": timeframe, "limit": 50}).json()["ohlc"]
    times = [c["timestamp"] for c in ohlc]
    assert len(times) == 50
    assert all(b - a == TIMEFRAMES[timeframe] for a, b in zip(times, times[1:]))
    assert [c["closed"] for c in ohlc].count(False) == 1 and ohlc[-1]["closed"] is False


async def _original_client_session(url: str) -> None:
    async with websockets.connect(url) as ws:  # the original README's client: no Origin header
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "connected"
        await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "price_update" and snapshot["symbol"] == "BTC"
        started = time.monotonic()
        fresh = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        assert fresh["type"] == "price_update" and fresh["timestamp"] > snapshot["timestamp"]
        assert time.monotonic() - started < 3  # within about one poll interval (1 s here)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] in ("pong", "price_update")
        await ws.send(json.dumps({"type": "get_subscriptions"}))
        while (message := json.loads(await ws.recv()))["type"] != "subscriptions":
            pass
        assert message["symbols"] == ["BTC"]
        await ws.send(json.dumps({"type": "unsubscribe", "symbol": "BTC"}))
        while (message := json.loads(await ws.recv()))["type"] != "unsubscribed":
            pass
        with pytest.raises(asyncio.TimeoutError):
            while True:  # silence afterwards: no price_update for 2.5 poll intervals
                extra = json.loads(await asyncio.wait_for(ws.recv(), timeout=2.5))
                assert extra["type"] == "heartbeat"


def test_the_original_python_clients_session(stack):
    asyncio.run(_original_client_session(f"ws://127.0.0.1:{stack.port}/ws"))


async def _fan_out(url: str, clients: int) -> list[dict]:
    sockets = [await websockets.connect(url) for _ in range(clients)]
    try:
        for ws in sockets:
            await ws.recv()
            await ws.send(json.dumps({"type": "subscribe", "symbol": "ETH"}))
            await ws.recv()  # subscribed
            await ws.recv()  # snapshot
        marker = int(time.time() * 1000)

        async def next_update(ws):
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if message["type"] == "price_update" and message["timestamp"] > marker:
                    return message

        first = await asyncio.gather(*(next_update(ws) for ws in sockets))
        return first
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


def test_fifty_clients_of_one_symbol_all_receive_the_same_update(stack):
    updates = asyncio.run(_fan_out(f"ws://127.0.0.1:{stack.port}/ws", 50))
    assert len(updates) == 50
    # Every client's first new update is the same stored price (a poll may land between
    # subscriptions, so compare each to the newest one they share).
    stamps = {u["timestamp"] for u in updates}
    assert len(stamps) <= 2
    newest = max(stamps)
    assert len({(u["price"], u["timestamp"]) for u in updates if u["timestamp"] == newest}) == 1


async def _misbehaving_clients(url: str) -> None:
    async def welcomed():
        ws = await websockets.connect(url)
        assert json.loads(await ws.recv())["type"] == "connected"
        return ws

    async def closed_with(ws) -> int:
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), timeout=10)
        return ws.close_code

    # Malformed: an error each time, and the connection stays usable.
    async with await welcomed() as ws:
        for bad in ("{not json", json.dumps({"type": "dance"}), json.dumps({"type": "subscribe", "symbol": "NOPE"})):
            await ws.send(bad)
            assert json.loads(await ws.recv())["type"] == "error"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"

    # Oversized: an error naming the limit, then close 1009.
    ws = await welcomed()
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
    error = json.loads(await ws.recv())
    assert error["type"] == "error" and "too large" in error["error"]
    assert await closed_with(ws) == 1009

    # Flooding: past 10 messages a second, an error, then close 1008.
    ws = await welcomed()
    for _ in range(15):
        await ws.send(json.dumps({"type": "ping"}))
    replies = []
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while True:
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
    assert [r["type"] for r in replies] == ["pong"] * 10 + ["error"] and "Rate limit" in replies[-1]["error"]
    assert ws.close_code == 1008


def test_malformed_oversized_and_flooding_clients_get_the_contracts_errors_and_closes(stack):
    asyncio.run(_misbehaving_clients(f"ws://127.0.0.1:{stack.port}/ws"))


def test_a_browser_origin_outside_allowed_hosts_is_refused(stack):
    async def attempt():
        async with websockets.connect(f"ws://127.0.0.1:{stack.port}/ws", origin="http://evil.example"):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus):
        asyncio.run(attempt())


def test_fault_switches_give_the_contracts_statuses_and_the_poller_keeps_going(stack):
    stack.sandbox("POST", "/_sandbox/faults", json={"exchange": "coinbase", "mode": "error", "status": 500})
    try:
        deadline = time.monotonic() + 20  # coinbase goes stale after 3 poll intervals; binance stays fresh
        while not (health := stack.http.get("/health").json())["sources"]["coinbase"]["stale"]:
            assert time.monotonic() < deadline, "coinbase never went stale"
            time.sleep(0.3)
        assert health["status"] == "degraded"
        assert health["sources"]["coinbase"]["stale"] and not health["sources"]["binance"]["stale"]
        response = stack.http.get("/api/market/price", params={"symbol": "BTC", "source": "coinbase"})
        assert response.status_code == 502
    finally:
        stack.sandbox("DELETE", "/_sandbox/faults")
    deadline = time.monotonic() + 15
    while stack.http.get("/health").json()["status"] != "ok":
        assert time.monotonic() < deadline, "coinbase did not recover"
        time.sleep(0.5)


def stored_open_times(stack, source: str, symbol: str, timeframe: str, since_ms: int) -> list[int]:
    """Read the stack's own database (a SQLite file): what the poller stored, not what the API
    would fetch live to fill a hole."""
    import sqlite3

    path = stack.env["DEMO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT open_time FROM market_candle WHERE source=? AND symbol=? AND timeframe=? AND open_time>=? ORDER BY open_time",
            (source, symbol, timeframe, since_ms),
        ).fetchall()
    return [r[0] for r in rows]


def test_an_exchange_outage_leaves_no_gap_in_stored_candles_once_it_is_back(stack):
    started = int(time.time() * 1000) // 60_000 * 60_000
    stack.sandbox("POST", "/_sandbox/faults", json={"exchange": "binance", "mode": "drop"})
    try:
        time.sleep(70)  # more than a minute: whole 1m candles pass while the exchange is down
    finally:
        stack.sandbox("DELETE", "/_sandbox/faults")
    deadline = time.monotonic() + 40
    while True:
        times = stored_open_times(stack, "binance", "SOL", "1m", started - 5 * 60_000)
        newest = int(time.time() * 1000) // 60_000 * 60_000
        complete = times and times[0] == started - 5 * 60_000 and times[-1] >= newest - 60_000
        if complete and all(b - a == 60_000 for a, b in zip(times, times[1:])):
            break
        assert time.monotonic() < deadline, times
        time.sleep(1)


def test_an_operator_adds_a_market_in_the_admin_and_sees_it_polled(stack):
    import re
    import subprocess
    import sys

    from cryptosite.stack import BASE_DIR

    env = {**stack.env, "DEMO": "1", "DJANGO_SUPERUSER_PASSWORD": "a-long-operator-password"}
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "operator",
                    "--email", "op@example.com"], cwd=BASE_DIR, env=env, check=True, capture_output=True)
    with httpx.Client(base_url=stack.base, timeout=15, follow_redirects=False) as browser:
        page = browser.get("/admin/login/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        login = browser.post("/admin/login/?next=/admin/", data={
            "csrfmiddlewaretoken": token, "username": "operator", "password": "a-long-operator-password", "next": "/admin/"})
        assert login.status_code == 302 and login.headers["location"] == "/admin/"
        form = browser.get("/admin/market/trackedmarket/add/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        added = browser.post("/admin/market/trackedmarket/add/", data={
            "csrfmiddlewaretoken": token, "source": "binance", "symbol": "DOGE", "enabled": "on", "_save": "Save"})
        assert added.status_code == 302, added.text[:2000]
    deadline = time.monotonic() + 20
    while not stack.http.get("/history", params={"symbol": "DOGE", "source": "Binance"}).json():
        assert time.monotonic() < deadline, "DOGE was not polled"
        time.sleep(0.5)
    assert "DOGE" in stack.http.get("/coins").json()["Binance"]
    ohlc = stack.http.get("/api/market/ohlc", params={"symbol": "DOGE", "timeframe": "1m", "limit": 30}).json()["ohlc"]
    assert len(ohlc) == 30


def test_ctrl_c_stops_every_process_it_started(stack):
    children = child_pids(stack.proc.pid)
    assert len(children) >= 5  # redis, sandbox, daphne, worker, beat
    assert stack.stop() == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.base}/health", timeout=2)


def _worker_pid(stack) -> int:
    for pid in child_pids(stack.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in cmdline[1:3] and b"worker" in cmdline and b"tasks" in cmdline:  # the polls' worker
            return pid
    raise AssertionError("no Celery worker for polls running")


@pytest.mark.parametrize("moment", [0.2, 2.5])  # during the start-up backfill, then among 1 s polls
def test_a_celery_worker_killed_mid_work_is_replaced_and_nothing_is_left_half_done(tmp_path, moment):
    running = RunningStack(tmp_path)
    try:
        running.wait_healthy()
        killed = _worker_pid(running)
        time.sleep(moment)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while True:  # a new worker, polling again
            assert time.monotonic() < deadline, "the worker was not replaced, or polling did not resume"
            time.sleep(0.5)
            try:
                replaced = _worker_pid(running) != killed
            except AssertionError:
                continue
            newest = running.http.get("/history", params={"symbol": "BTC", "source": "Binance", "limit": 1}).json()
            if replaced and newest and time.time() - _epoch(newest[0]["timestamp"]) < 3:
                break
        # The backfill the killed worker may have been doing is done again: no hole in what is
        # stored (read from the database itself: the API would fetch a hole live).
        for timeframe in ("1m", "5m", "1h"):
            deadline = time.monotonic() + 60
            while True:
                with sqlite3.connect(tmp_path / "demo.sqlite3") as db:
                    times = [row[0] for row in db.execute(
                        "SELECT open_time FROM market_candle WHERE source = 'binance' AND symbol = 'ETH' AND timeframe = ? "
                        "ORDER BY open_time DESC LIMIT 50", (timeframe,))]
                if len(times) == 50 and all(a - b == TIMEFRAMES[timeframe] for a, b in zip(times, times[1:])):
                    break
                assert time.monotonic() < deadline, f"stored {timeframe} candles still have gaps ({len(times)} of 50)"
                time.sleep(1)
        assert running.proc.poll() is None  # the stack itself kept running
    finally:
        running.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_the_whole_system_recovers_from_its_redis_being_killed(tmp_path):
    """Embedded Redis killed under `make demo`: the stack starts it again (empty), and the poller,
    beat, cache, rate limit and every subscriber carry on by themselves."""
    running = RunningStack(tmp_path)
    try:
        running.wait_healthy()
        with websockets_sync.connect(f"ws://127.0.0.1:{running.port}/ws") as ws:
            ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
            while json.loads(ws.recv(10))["type"] != "subscribed":
                pass
            redis_pid = next(pid for pid in child_pids(running.proc.pid)
                             if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes())
            os.kill(redis_pid, signal.SIGKILL)
            time.sleep(1)
            killed_at = time.time() * 1000
            deadline = time.monotonic() + 30
            while True:  # prices stored after the restart reach the subscriber
                assert time.monotonic() < deadline, "no price reached the subscriber after Redis came back"
                try:
                    message = json.loads(ws.recv(1))
                except TimeoutError:
                    continue
                if message["type"] == "price_update" and message["timestamp"] > killed_at:
                    break
        deadline = time.monotonic() + 30
        while running.http.get("/health").json()["status"] != "ok":
            assert time.monotonic() < deadline, "the system did not become healthy again"
            time.sleep(0.5)
        assert "x-ratelimit-remaining" in running.http.get("/coins").headers
    finally:
        running.stop()

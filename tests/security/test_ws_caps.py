"""WebSocket connections per client address are capped across server processes, and handshakes
spend the client's rate limit: over either, uvicorn answers the handshake with 429 and daphne
closes with 1008 and the reason. Against the servers as the stack starts them (cryptosite.serve),
sharing the suite's Redis."""

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack

import httpx
import pytest
import redis
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.keys import ws_connections_key as connections_key
from tests.e2e.conftest import server_database, server_processes, serving

pytestmark = pytest.mark.e2e

CAP = 3
LEASE = 3  # seconds: short, so that a test can outlive a few leases


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(tmp_path_factory, request):
    with serving(tmp_path_factory.mktemp(request.param), "--server", request.param, WS_MAX_CONNECTIONS_PER_IP=str(CAP),
                 WS_CONNECTION_LEASE_SECONDS=str(LEASE), RATE_LIMIT="10000/m") as (port, _proc):
        yield request.param, port


@pytest.fixture
def store():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


class Refused(Exception):
    def __init__(self, status: int | None, body: dict, headers=None, code: int | None = None, reason: str = ""):
        super().__init__(status, body, code, reason)
        self.status, self.body, self.headers, self.code, self.reason = status, body, headers or {}, code, reason


async def open_ws(port: int, stack: AsyncExitStack, headers=None):
    """An open /ws connection that got its `connected` message, or Refused: the 429 (uvicorn), or the
    error message and the close (daphne)."""
    try:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers, open_timeout=20)
    except InvalidStatus as exc:
        response = exc.response
        raise Refused(response.status_code, json.loads(response.body), response.headers) from None
    stack.push_async_callback(ws.close)
    first = json.loads(await asyncio.wait_for(ws.recv(), 20))
    if first["type"] == "connected":
        return ws
    try:
        await asyncio.wait_for(ws.recv(), 20)
    except ConnectionClosed as closed:
        raise Refused(None, first, code=closed.rcvd.code, reason=closed.rcvd.reason) from None
    raise AssertionError(f"neither connected nor closed: {first}")


async def burst(port: int, count: int, stack: AsyncExitStack, headers=None) -> tuple[list, list[Refused]]:
    outcomes = await asyncio.gather(*(open_ws(port, stack, headers) for _ in range(count)), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, Refused)]
    if errors:
        raise errors[0]
    return [o for o in outcomes if not isinstance(o, Refused)], [o for o in outcomes if isinstance(o, Refused)]


def assert_refused_for_connections(kind: str, refused: Refused) -> None:
    reason = f"Too many connections: at most {CAP} per client address"
    if kind == "uvicorn":
        assert refused.status == 429 and refused.body["error"] == reason and refused.body["timestamp"]
    else:
        assert refused.code == 1008 and refused.reason == reason
        assert refused.body["type"] == "error" and refused.body["error"] == reason


def wait_until(condition, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def open_count(store, address: str = "127.0.0.1") -> int:
    return store.zcard(connections_key(address))


def test_a_burst_from_one_address_gets_exactly_the_cap_and_the_rest_are_refused(server):
    kind, port = server

    async def run():
        async with AsyncExitStack() as stack:
            opened, refused = await burst(port, CAP + 4, stack)
            assert len(opened) == CAP and len(refused) == 4
            for one in refused:
                assert_refused_for_connections(kind, one)
            # The accepted ones are served as usual.
            await opened[0].send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(opened[0].recv(), 20))["type"] == "pong"

    asyncio.run(run())


def test_closing_a_connection_frees_its_slot_for_the_next(server, store):
    kind, port = server

    async def run():
        async with AsyncExitStack() as stack:
            opened, _ = await burst(port, CAP, stack)
            with pytest.raises(Refused):
                await open_ws(port, stack)
            await opened[0].close()
            await asyncio.to_thread(wait_until, lambda: open_count(store) == CAP - 1)
            await open_ws(port, stack)

    asyncio.run(run())


def test_a_connection_the_server_closes_frees_its_slot_too(server, store):
    kind, port = server

    async def run():
        async with AsyncExitStack() as stack:
            opened, _ = await burst(port, CAP, stack)
            await opened[0].send("x" * 10_000)  # over WS_MAX_MESSAGE_BYTES: the server closes with 1009
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(opened[0].recv(), 20)
            await asyncio.to_thread(wait_until, lambda: open_count(store) == CAP - 1)
            await open_ws(port, stack)

    asyncio.run(run())


def test_an_open_connection_keeps_its_slot_for_longer_than_one_lease(server):
    kind, port = server

    async def run():
        async with AsyncExitStack() as stack:
            await burst(port, CAP, stack)
            await asyncio.sleep(LEASE * 2.5)  # the leases are renewed meanwhile
            with pytest.raises(Refused) as refused:
                await open_ws(port, stack)
            assert_refused_for_connections(kind, refused.value)

    asyncio.run(run())


def write_entries(store, address: str, lease_left: float, count: int = CAP) -> None:
    """What a server process leaves in Redis for its open connections when it is killed: their
    entries, each with the time its lease ends (by Redis's clock, as the server reads it)."""
    seconds, micros = store.time()
    now = seconds + micros / 1e6
    store.zadd(connections_key(address), {f"dead-process-{i}": now + lease_left for i in range(count)})


def test_a_killed_process_s_connections_stop_counting_once_their_lease_has_run_out(server, store):
    kind, port = server

    async def run():
        async with AsyncExitStack() as stack:
            write_entries(store, "127.0.0.1", lease_left=3600)  # leases still running: they count
            with pytest.raises(Refused):
                await open_ws(port, stack)
            store.delete(connections_key("127.0.0.1"))
            write_entries(store, "127.0.0.1", lease_left=-1)  # no longer renewed: they do not
            opened, _refused = await burst(port, CAP, stack)
            assert len(opened) == CAP
            assert {m.decode() for m in store.zrange(connections_key("127.0.0.1"), 0, -1)}.isdisjoint(
                {f"dead-process-{i}" for i in range(CAP)})

    asyncio.run(run())


def test_clients_behind_a_trusted_proxy_are_each_capped_on_their_own(tmp_path):
    async def run(port):
        async with AsyncExitStack() as stack:
            first = {"X-Forwarded-For": "203.0.113.7"}
            opened, refused = await burst(port, CAP + 1, stack, first)
            assert len(opened) == CAP and len(refused) == 1
            # Another client of the same proxy has its own slots.
            await open_ws(port, stack, {"X-Forwarded-For": "198.51.100.9"})

    with serving(tmp_path, TRUSTED_PROXIES="127.0.0.1", WS_MAX_CONNECTIONS_PER_IP=str(CAP)) as (port, _proc):
        asyncio.run(run(port))


def test_two_server_processes_share_one_cap(tmp_path, store):
    env = {**os.environ, "DATABASE_URL": server_database(tmp_path), "WS_MAX_CONNECTIONS_PER_IP": str(CAP),
           "WS_HEARTBEAT_SECONDS": "3600"}
    env.pop("DEMO", None)

    async def run(ports):
        async with AsyncExitStack() as stack:
            await open_ws(ports[0], stack)
            await open_ws(ports[1], stack)
            await open_ws(ports[0], stack)
            for port in ports:
                with pytest.raises(Refused) as refused:
                    await open_ws(port, stack)
                assert refused.value.status == 429

    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env, check=True, stdout=subprocess.DEVNULL)
    with server_processes(env, 2) as urls:
        asyncio.run(run([int(url.rsplit(":", 1)[1]) for url in urls]))


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_handshakes_and_http_requests_spend_one_rate_limit_and_past_it_a_handshake_is_refused(tmp_path, kind):
    async def run(port):
        async with AsyncExitStack() as stack:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/api/market/ohlc?symbol=ETH&timeframe=2h")).status_code == 400  # counted
                await open_ws(port, stack)
                await open_ws(port, stack)
                await open_ws(port, stack)  # the fourth of four
                with pytest.raises(Refused) as refused:
                    await open_ws(port, stack)
                # The handshakes were counted as requests are: the API is over its limit too.
                assert (await http.get("/api/market/ohlc?symbol=ETH&timeframe=2h")).status_code == 429
        return refused.value

    with serving(tmp_path, "--server", kind, RATE_LIMIT="4/d") as (port, _proc):
        refused = asyncio.run(run(port))
    if kind == "uvicorn":
        assert refused.status == 429
        assert refused.body["error"] == "Rate limit exceeded" and refused.body["retry_after"] >= 1
        assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-RateLimit-Remaining"] == "0"
    else:
        assert refused.code == 1008 and refused.reason == "Rate limit exceeded"
        assert refused.body["error"] == "Rate limit exceeded" and refused.body["retry_after"] >= 1

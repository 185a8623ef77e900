import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cryptosite.stack import BASE_DIR, descendants, free_port, wait_for_port

pytestmark = pytest.mark.e2e


def child_pids(pid: int) -> set[int]:
    """Every descendant of pid."""
    return set(descendants(pid))


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def serving(tmp_path: Path, *server_args: str, **env_extra: str):
    """The web server as the stack starts it (python -m cryptosite.serve) on a migrated database of
    the test's own; yields (port, process)."""
    env = {**os.environ, "DATABASE_URL": server_database(tmp_path), "WS_HEARTBEAT_SECONDS": "3600", **env_extra}
    env.pop("DEMO", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cryptosite.serve", *server_args, "-b", "127.0.0.1", "-p", str(port)],
                            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 60, proc)
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(20)


@contextmanager
def server_processes(env: dict, count: int = 2):
    """`count` web servers (python -m cryptosite.serve), each a process of its own on a port of its
    own, sharing `env` (its database and Redis); yields their base URLs."""
    ports, procs = [free_port() for _ in range(count)], []
    try:
        for port in ports:
            procs.append(subprocess.Popen([sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(port),
                                           "cryptosite.asgi:application"], cwd=BASE_DIR, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, procs):
            wait_for_port("127.0.0.1", port, 60, proc)
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


def server_database(tmp_path: Path) -> str:
    """The database a server started by a test uses: the one E2E_DATABASE_URL names (a database for
    tests alone: CI's PostgreSQL pass), else a SQLite file of the test's own; never DATABASE_URL."""
    return os.environ.get("E2E_DATABASE_URL") or f"sqlite:///{tmp_path / 'db.sqlite3'}"


class RunningStack:
    """`python -m cryptosite.stack --demo` (what `make demo` runs) on free ports."""

    def __init__(self, tmp: Path, ports: tuple[int, int, int, int] | None = None, **extra_env):
        self.tmp = tmp
        self.port, self.sandbox_port, self.redis_port, self.feed_port = ports or (free_port(), free_port(), free_port(),
                                                                                 free_port())
        self.extra_env = extra_env
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "SANDBOX_PORT": str(self.sandbox_port),
            "SANDBOX_FEED_PORT": str(self.feed_port),
            # The REST poller's path unless a test asks for the live feeds (tests/e2e/test_feeds.py).
            "FEEDS": "",
            # The demo's two first exchanges unless a test asks for more (tests/e2e/test_breadth.py).
            "EXCHANGES": "binance,coinbase",
            "EMBEDDED_REDIS_PORT": str(self.redis_port),
            "DEMO_DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite3'}",
            "POLL_INTERVAL": "1",
            "CANDLE_SYNC_INTERVAL": "5",
            "BACKFILL_CANDLES": "60",
            "WORKER_CONCURRENCY": "4",
            "EXCHANGE_TIMEOUT": "2",
            **extra_env,
        }
        self.env.pop("REDIS_URL", None)
        self.env.pop("DATABASE_URL", None)
        self.log_path = tmp / "stack.log"
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "cryptosite.stack", "--demo"], cwd=BASE_DIR, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base, timeout=15)

    def wait_healthy(self, seconds: float = 120) -> dict:
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited: {self.log_path.read_text()[-3000:]}")
            try:
                last = self.http.get("/health").json()
                if last["status"] == "ok":
                    return last
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"not healthy in {seconds}s: {last}\n{self.log_path.read_text()[-3000:]}")

    def restart(self) -> "RunningStack":
        """Stop, then start again on the same ports with the same database."""
        self.stop()
        return RunningStack(self.tmp, (self.port, self.sandbox_port, self.redis_port, self.feed_port), **self.extra_env)

    def sandbox(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"http://127.0.0.1:{self.sandbox_port}{path}", timeout=5, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.http.close()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # Every client of the module comes from 127.0.0.1: every WebSocket handshake counts against
    # RATE_LIMIT (100 a minute would refuse some of them by chance of timing), and its connections
    # against WS_MAX_CONNECTIONS_PER_IP (the fan-out test opens 50, the default cap, and a server
    # lets go of a closed one's lease a moment after the client sees the close: the next test's
    # handshake was refused with 429 now and then). Both caps have tests of their own
    # (tests/e2e/test_shared_rate_limit.py, tests/security/test_ws_caps.py).
    running = RunningStack(tmp_path_factory.mktemp("stack"), RATE_LIMIT="100000/m", WS_MAX_CONNECTIONS_PER_IP="1000")
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def until(check, seconds: float, what: str):
    """`check()`'s first truthy answer, asked every 0.1 s; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.1)

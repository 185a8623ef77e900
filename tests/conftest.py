import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from apikeys import selectors as api_key_selectors
from core import threads
from cryptosite.stack import free_port, redis_server_binary, wait_for_port
from market import selectors
from market.exchanges import http as exchange_http
from sandbox.server import make_server


@pytest.fixture(autouse=True)
def _clean_shared_state():
    """Each test starts with an empty cache (Redis), no exchange back-off and no remembered API keys."""
    cache.clear()
    api_key_selectors.forget_verdicts()
    exchange_http.reset_state()
    selectors.forget_poll_schedule()
    yield
    exchange_http.reset_state()
    # Requests through the served application ran on its thread pool: close those threads' database
    # connections (PostgreSQL cannot drop the test database while they are open).
    threads.close_connections()


@pytest.fixture
def sandbox(settings):
    """The sandbox exchange on a free loopback port, with every adapter pointed at it."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings.EXCHANGE_API_URLS = {name: f"{base}/{name}" for name in ("binance", "coinbase", "kraken", "okx", "bybit")}
    settings.EXCHANGE_API_URLS["coingecko"] = f"{base}/coingecko/api/v3"
    server.base_url = base
    yield server
    server.shutdown()
    server.server_close()


def set_fault(server, exchange: str, **spec) -> None:
    server.RequestHandlerClass.faults.set(exchange, {"exchange": exchange, **spec})


def request_count(server, exchange: str) -> int:
    return server.RequestHandlerClass.faults.requests.get(exchange, 0)


class OwnRedis:
    """A Redis server of this test's own, to stop and start again (as an operator's restart does)."""

    def __init__(self, directory):
        self.port, self.directory = free_port(), directory
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 15, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Receiver:
    """A webhook receiver on loopback: answers `status` after `delay` seconds, records each request."""

    def __init__(self):
        self.status, self.delay, self.requests = 200, 0.0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """A webhook receiver that behaves (tests/alerts, tests/security)."""
    r = Receiver()
    yield r
    r.close()

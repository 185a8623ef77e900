import threading

import pytest
from django.core.cache import cache

from market import selectors
from market.exchanges import http as exchange_http
from market.sandbox.server import make_server


@pytest.fixture(autouse=True)
def _clean_shared_state():
    """Each test starts with an empty cache (Redis) and no exchange back-off."""
    cache.clear()
    exchange_http.reset_state()
    selectors.forget_poll_schedule()
    yield
    exchange_http.reset_state()


@pytest.fixture
def sandbox(settings):
    """The sandbox exchange on a free loopback port, with every adapter pointed at it."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings.EXCHANGE_API_URLS = {name: f"{base}/{name}" for name in ("binance", "coinbase", "kraken")}
    server.base_url = base
    yield server
    server.shutdown()
    server.server_close()


def set_fault(server, exchange: str, **spec) -> None:
    server.RequestHandlerClass.faults.set(exchange, {"exchange": exchange, **spec})


def request_count(server, exchange: str) -> int:
    return server.RequestHandlerClass.faults.requests.get(exchange, 0)

"""The rate limit is one budget per client IP across every server process (counted in Redis)."""

import os

import httpx
import pytest

from tests.e2e.conftest import server_database, server_processes

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_servers(tmp_path):
    env = {**os.environ, "RATE_LIMIT": "10/d", "DATABASE_URL": server_database(tmp_path)}
    env.pop("DEMO", None)
    with server_processes(env) as urls:
        yield urls


def test_the_request_past_the_limit_is_429_even_when_spread_over_two_processes(two_servers):
    # The suite's autouse fixture empties the shared cache first, so the budget starts full.
    statuses = []
    for i in range(11):
        url = two_servers[i % 2] + "/api/market/ohlc?symbol=ETH&timeframe=2h"
        statuses.append(httpx.get(url, timeout=10).status_code)
    assert statuses[:10] == [400] * 10  # served (a bad timeframe), each counted once
    assert statuses[10] == 429
    other = httpx.get(two_servers[1] + "/health", timeout=10)
    assert other.status_code in (200, 503)  # /health is never limited

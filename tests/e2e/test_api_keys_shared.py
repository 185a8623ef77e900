"""API keys across two server processes on one database and one Redis: a key's budget is one,
and a key revoked by a third process (manage.py apikey revoke) is refused by both at once."""

import os
import subprocess
import sys

import httpx
import pytest

from cryptosite.stack import BASE_DIR
from tests.e2e.conftest import server_database, server_processes

pytestmark = pytest.mark.e2e

BAD_REQUEST = "/api/market/ohlc?symbol=ETH&timeframe=2h"  # a 400, counted at the edge, answered by Django
COINS = "/coins"  # served by the edge from its document once rendered


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apikeys")
    env = {**os.environ, "DATABASE_URL": server_database(tmp), "RATE_LIMIT": "100/d",
           "API_KEY_TIERS": "standard=1000/m,tiny=5/d", "WEB_CONCURRENCY": "1"}
    env.pop("DEMO", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with server_processes(env) as urls:

        def manage(*args: str) -> str:
            done = subprocess.run([sys.executable, "manage.py", "apikey", *args], cwd=BASE_DIR, env=env,
                                  capture_output=True, text=True, check=True)
            return done.stdout.strip()

        yield urls, manage


def test_a_keys_tier_budget_is_one_across_two_processes_and_apart_from_its_ip(servers):
    urls, manage = servers
    key = manage("create", "tiny-client", "--tier", "tiny")
    responses = [httpx.get(urls[i % 2] + BAD_REQUEST, headers={"X-API-Key": key}, timeout=10) for i in range(6)]
    assert [r.status_code for r in responses] == [400] * 5 + [429]
    assert [r.headers["x-ratelimit-limit"] for r in responses] == ["5"] * 6
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["4", "3", "2", "1", "0", "0"]
    anonymous = httpx.get(urls[0] + BAD_REQUEST, timeout=10)
    assert anonymous.status_code == 400 and anonymous.headers["x-ratelimit-limit"] == "100"
    assert "tiny-client\t" in manage("list") and "\t6\t" in manage("list")  # six requests today


def test_a_key_revoked_by_another_process_is_refused_by_both_servers_at_their_next_request(servers):
    urls, manage = servers
    key = manage("create", "leaked")
    for _ in range(2):  # both processes verify the key, and serve it from their edge after that
        for url in urls:
            assert httpx.get(url + COINS, headers={"Authorization": f"Api-Key {key}"}, timeout=10).status_code == 200
    manage("revoke", "leaked")
    for url in urls:
        refused = httpx.get(url + COINS, headers={"Authorization": f"Api-Key {key}"}, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "Invalid API key"
        assert httpx.get(url + COINS, timeout=10).status_code == 200  # anonymous, as before


def test_a_wrong_key_is_401_on_both_servers(servers):
    urls, _ = servers
    for url in urls:
        for headers in ({"X-API-Key": "nope.wrong"}, {"Authorization": "Api-Key nope.wrong"}):
            response = httpx.get(url + COINS, headers=headers, timeout=10)
            assert response.status_code == 401 and set(response.json()) >= {"error", "timestamp"}

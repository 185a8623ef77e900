"""API keys over HTTP, through the application as served (the edge, then Django), on the real
database and Redis: the tier's budget per key, 401 for a wrong or revoked key, usage counted."""

import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apikeys import selectors, services, usage
from market.domain.prices import Quote
from market.prices import record_quotes
from tests.apikeys.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = "/api/market/price?symbol=BTC"  # answered by the edge once its document is stored
SENTIMENT = "/api/sentiment/analyze"  # always Django's


def store_price() -> None:
    at = int(time.time() * 1000)
    record_quotes("binance", [Quote("BTC", Decimal("50000.5"), at)], at)


def assert_401(response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "Invalid API key" and body["timestamp"]
    assert response.headers["www-authenticate"] == "Api-Key"


@pytest.mark.parametrize("path", [PRICE, "/api/market/ohlc?symbol=ETH&timeframe=2h", "/coins"])
async def test_a_good_key_gets_its_tiers_budget_and_headers_counted_per_key(served, path):
    raw = await sync_to_async(new_key)("alice", "pro")
    await sync_to_async(store_price)()
    first = await served.get(path, headers={"Authorization": f"Api-Key {raw}"})
    second = await served.get(path, headers={"X-API-Key": raw})
    assert first.status_code == second.status_code != 401
    assert first.headers["x-ratelimit-limit"] == second.headers["x-ratelimit-limit"] == "10000"
    assert int(first.headers["x-ratelimit-remaining"]) == 9999
    assert int(second.headers["x-ratelimit-remaining"]) == 9998
    anonymous = await served.get(path)
    assert anonymous.headers["x-ratelimit-limit"] == "100"
    assert anonymous.headers["x-ratelimit-remaining"] == "99"  # the key's requests were not the IP's


async def test_a_key_past_its_tiers_limit_is_429_while_its_ip_and_other_keys_still_have_budget(served):
    tiny = await sync_to_async(new_key)("tiny-client", "tiny")
    other = await sync_to_async(new_key)("other", "tiny")
    await sync_to_async(store_price)()
    statuses = [(await served.get(PRICE, headers={"X-API-Key": tiny})).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    over = await served.get(SENTIMENT, headers={"X-API-Key": tiny})  # through Django: the same budget
    assert over.status_code == 429 and over.json()["error"] == "Rate limit exceeded"
    assert over.headers["x-ratelimit-limit"] == "3" and over.headers["x-ratelimit-remaining"] == "0"
    assert (await served.get(PRICE, headers={"X-API-Key": other})).status_code == 200
    assert (await served.get(PRICE)).status_code == 200


@pytest.mark.parametrize("headers", [{"Authorization": "Api-Key nope.wrong"}, {"X-API-Key": "nope.wrong"},
                                     {"X-API-Key": ""}, {"Authorization": "Api-Key"}])
@pytest.mark.parametrize("method,path", [("GET", PRICE), ("GET", "/prices"), ("GET", "/history?symbol=BTC&source=Binance"),
                                         ("POST", SENTIMENT)])
async def test_a_wrong_key_is_401_with_the_contracts_body_never_anonymous(served, headers, method, path):
    await sync_to_async(new_key)()
    await sync_to_async(store_price)()
    assert (await served.get(path if method == "GET" else PRICE)).status_code == 200  # anonymous is served
    response = await served.request(method, path, headers=headers, json={"text": "Bitcoin is surging"})
    assert_401(response)
    assert response.headers["x-ratelimit-limit"] == "100"  # a wrong key costs its IP one request


async def test_a_wrong_key_is_asked_of_the_database_once_then_remembered(served, verifications):
    await sync_to_async(store_price)()
    for _ in range(3):
        assert_401(await served.get(PRICE, headers={"X-API-Key": "nope.wrong"}))
    assert len(verifications) == 1


async def test_a_good_key_is_verified_once_per_process_then_served_by_the_edge(served, verifications):
    raw = await sync_to_async(new_key)()
    await sync_to_async(store_price)()
    for _ in range(5):
        assert (await served.get(PRICE, headers={"X-API-Key": raw})).status_code == 200
    assert len(verifications) == 1


@pytest.mark.parametrize("path", [PRICE, SENTIMENT])
async def test_a_revoked_key_is_401_at_its_next_request(served, verifications, path):
    raw = await sync_to_async(new_key)("bob")
    await sync_to_async(store_price)()
    ok = await served.request("POST" if path == SENTIMENT else "GET", path, headers={"X-API-Key": raw}, json={"text": "up"})
    assert ok.status_code == 200
    await sync_to_async(services.revoke_key)("bob")  # as another process does: the database, then the version in Redis
    response = await served.request("POST" if path == SENTIMENT else "GET", path, headers={"X-API-Key": raw},
                                    json={"text": "up"})
    assert_401(response)
    assert len(verifications) == 2  # verified, then verified again because the keys' version moved on


async def test_an_expired_key_is_401(served):
    from datetime import UTC, datetime, timedelta

    from apikeys.models import ApiKey

    raw = await sync_to_async(new_key)("old")
    await sync_to_async(ApiKey.objects.filter(name="old").update)(expiry_date=datetime.now(UTC) - timedelta(seconds=1))
    assert_401(await served.get(PRICE, headers={"X-API-Key": raw}))


async def test_each_request_of_a_key_is_counted_for_the_day_with_its_last_use(served):
    raw = await sync_to_async(new_key)("counted")
    prefix = raw.split(".")[0]
    await sync_to_async(store_price)()
    before = time.time()
    for path in (PRICE, PRICE, "/coins", "/api/market/ohlc?symbol=ETH&timeframe=2h"):
        await served.get(path, headers={"X-API-Key": raw})
    await served.post(SENTIMENT, headers={"X-API-Key": raw}, json={"text": "up"})
    today = await sync_to_async(usage.requests_by_day)(prefix, 2)
    assert today[0][1] == 5 and today[1][1] == 0
    last = (await sync_to_async(usage.last_used)([prefix]))[prefix]
    assert before - 1 <= last <= time.time() + 1


async def test_health_and_metrics_ignore_keys(served):
    assert (await served.get("/health", headers={"X-API-Key": "nope.wrong"})).status_code in (200, 503)


@pytest.fixture
def own_redis(settings, tmp_path):
    """The cache (rate limits, key usage, the keys' version) on a Redis of this test's own, to stop."""
    from tests.conftest import OwnRedis

    redis = OwnRedis(tmp_path)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis.url}}
    settings.REDIS_URL = redis.url
    yield redis
    redis.stop()


async def test_while_redis_is_down_keys_are_still_checked_and_a_revoke_is_seen_within_seconds(own_redis, served, monkeypatch):
    raw = await sync_to_async(new_key)("steady")
    await sync_to_async(store_price)()
    assert (await served.get(PRICE, headers={"X-API-Key": raw})).status_code == 200
    own_redis.stop()
    monkeypatch.setattr(selectors, "TRUST_SECONDS", 0.3)
    served_uncounted = await served.get(PRICE, headers={"X-API-Key": raw})
    assert served_uncounted.status_code == 200 and "x-ratelimit-remaining" not in served_uncounted.headers
    assert_401(await served.get(PRICE, headers={"X-API-Key": "nope.wrong"}))
    await sync_to_async(services.revoke_key)("steady")  # its version cannot reach Redis
    time.sleep(0.4)
    assert_401(await served.get(PRICE, headers={"X-API-Key": raw}))

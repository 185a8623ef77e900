"""One rule for every way in (apikeys.authentication.authenticate): the rate limiter's middleware,
the ASGI edge, /ws, and DRF's ApiKeyAuthentication, which takes the middleware's answer; on the
real database and Redis."""

import asyncio
import json
import threading
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apikeys import authentication, selectors, services, usage
from apikeys.authentication import AFTER_COUNT, InvalidKey, KeysUnavailable, NotRemembered, authenticate
from cryptosite import edge, ratelimit
from cryptosite.asgi import application
from cryptosite.stack import free_port
from cryptosite.urls import urlpatterns as site_urlpatterns
from streaming import auth as ws_auth
from streaming.consumers import CLOSE_UNAUTHORIZED
from tests.apikeys.conftest import new_key
from tests.apikeys.test_keys_http import PRICE, SENTIMENT, assert_401, store_price


class WhoAmI(APIView):
    """A DRF view like any other, saying what DRF made of the request."""

    def get(self, request):
        key = request.auth
        return Response({"key": None if key is None else {"name": key.name, "tier": key.tier, "prefix": key.prefix},
                         "user": request.user})


urlpatterns = [path("api/whoami", WhoAmI.as_view()), *site_urlpatterns]
WHOAMI = "/api/whoami"


@pytest.fixture
def whoami(settings):
    settings.ROOT_URLCONF = __name__


# --- the rule ------------------------------------------------------------------------------


def test_every_way_in_calls_the_one_rule():
    assert ratelimit.authenticate is edge.authenticate is ws_auth.authenticate_key is authentication.authenticate
    assert services.authenticate is authentication.authenticate  # /ws's use_key


@pytest.mark.django_db
def test_a_verdict_answers_for_the_version_it_was_reached_under_and_is_asked_again_for_another(verifications):
    raw = new_key("versioned", "pro")
    key = authenticate(raw, "v1")
    assert (key.name, key.tier, key.prefix) == ("versioned", "pro", raw.split(".")[0])
    assert authenticate(raw, "v1") == key and len(verifications) == 1
    services.revoke_key("versioned")
    assert authenticate(raw, "v1") == key  # the revoke's new version has not been read: nothing to see yet
    with pytest.raises(InvalidKey):
        authenticate(raw, "v2")
    assert len(verifications) == 2


@pytest.mark.django_db
def test_a_wrong_key_is_invalid_and_remembered(verifications):
    for raw in ("nope.wrong", "", "x" * 500):
        with pytest.raises(InvalidKey) as refused:
            authenticate(raw, "v1")
        assert (refused.value.status, str(refused.value)) == (401, "Invalid API key")
    with pytest.raises(InvalidKey):
        authenticate("nope.wrong", AFTER_COUNT)
    assert len(verifications) == 3


@pytest.mark.django_db
def test_the_edge_never_asks_the_database(verifications, django_assert_num_queries):
    raw = new_key()
    with django_assert_num_queries(0), pytest.raises(NotRemembered):
        authenticate(raw, AFTER_COUNT, database=False)
    key = authenticate(raw)  # verified by Django, under the version read now
    with django_assert_num_queries(0):
        assert authenticate(raw, AFTER_COUNT, database=False) == key
        assert authenticate(raw, usage.version(), database=False) == key
        with pytest.raises(NotRemembered):  # the keys changed since: Django asks again
            authenticate(raw, "another version", database=False)
    assert len(verifications) == 1


@pytest.mark.django_db
def test_while_redis_cannot_say_a_verdict_answers_only_while_recent(verifications, monkeypatch):
    raw = new_key()
    authenticate(raw, "v1")
    authenticate(raw, None)
    assert len(verifications) == 1
    monkeypatch.setattr(selectors, "TRUST_SECONDS", 0.0)
    authenticate(raw, None)
    assert len(verifications) == 2


@contextmanager
def database_unreachable():
    """The default database's settings pointed at nothing (connections made from now on fail)."""
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    if settings_dict["ENGINE"].endswith("sqlite3"):
        settings_dict["NAME"] = "/nonexistent/directory/db.sqlite3"
    else:
        settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        settings_dict.clear()
        settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_a_key_that_cannot_be_checked_is_the_contracts_503():
    raw = new_key()
    outcome = []

    def check():  # a thread of its own: a new connection, made while the database is unreachable
        try:
            authenticate(raw, "v1")
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    with database_unreachable():
        thread = threading.Thread(target=check)
        thread.start()
        thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], KeysUnavailable), outcome
    assert outcome[0].status == 503


# --- DRF --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_drf_views_request_auth_is_the_key_the_middleware_resolved_once(served, whoami, verifications):
    raw = await sync_to_async(new_key)("alice", "pro")
    for headers in ({"X-API-Key": raw}, {"Authorization": f"Api-Key {raw}"}):
        response = await served.get(WHOAMI, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"key": {"name": "alice", "tier": "pro", "prefix": raw.split(".")[0]}, "user": None}
        assert response.headers["x-ratelimit-limit"] == "10000"
    assert len(verifications) == 1  # the middleware's; DRF took its answer


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_drf_request_has_no_auth_and_is_served(served, whoami):
    response = await served.get(WHOAMI)
    assert response.status_code == 200 and response.json() == {"key": None, "user": None}
    assert response.headers["x-ratelimit-limit"] == "100"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("headers", [{"X-API-Key": "nope.wrong"}, {"Authorization": "Api-Key nope.wrong"}, {"X-API-Key": ""}])
async def test_a_wrong_key_never_reaches_a_drf_view(served, whoami, headers):
    assert_401(await served.get(WHOAMI, headers=headers))


@pytest.mark.django_db
def test_a_drf_view_reached_without_the_middleware_authenticates_by_the_same_rule(verifications):
    raw = new_key("direct")
    view, factory = WhoAmI.as_view(), APIRequestFactory()
    good = view(factory.get(WHOAMI, HTTP_X_API_KEY=raw))
    assert good.status_code == 200 and good.data["key"]["name"] == "direct"
    assert view(factory.get(WHOAMI)).data["key"] is None
    wrong = view(factory.get(WHOAMI, HTTP_AUTHORIZATION="Api-Key nope.wrong"))
    # A 401 with its challenge, as behind the middleware (DRF answers 403 without an authenticate header)
    assert wrong.status_code == 401 and wrong.data["error"] == "Invalid API key"
    assert wrong["WWW-Authenticate"] == "Api-Key"
    assert len(verifications) == 2


@pytest.mark.django_db(transaction=True)
async def test_keys_are_ignored_where_they_do_not_apply(served, verifications):
    response = await served.get("/health", headers={"X-API-Key": "nope.wrong"})
    assert response.status_code in (200, 503) and verifications == []


# --- every way in, one memory ---------------------------------------------------------------


@pytest.fixture
async def ws_with_key():
    opened = []

    async def open_ws(raw: str) -> WebsocketCommunicator:
        ws = WebsocketCommunicator(application, "/ws", headers=[(b"x-api-key", raw.encode())])
        opened.append(ws)
        connected, _ = await ws.connect()
        assert connected
        return ws

    yield open_ws
    for ws in opened:
        try:
            await ws.disconnect(timeout=5)
        except Exception:  # already closed by the server
            pass
    await asyncio.wait_for(get_channel_layer().close_pools(), timeout=10)
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_key_verified_by_one_way_in_is_known_to_the_others_and_a_revoke_refused_by_all(served, verifications,
                                                                                                ws_with_key):
    raw = await sync_to_async(new_key)("everywhere")
    await sync_to_async(store_price)()
    ws = await ws_with_key(raw)
    assert (await ws.receive_json_from())["type"] == "connected"
    assert (await ws.receive_json_from())["type"] == "authenticated"
    assert (await served.get(PRICE, headers={"X-API-Key": raw})).status_code == 200  # the edge
    assert (await served.post(SENTIMENT, headers={"X-API-Key": raw}, json={"text": "up"})).status_code == 200  # Django
    assert len(verifications) == 1  # /ws's verdict served the edge and the middleware

    await sync_to_async(services.revoke_key)("everywhere")
    assert_401(await served.get(PRICE, headers={"X-API-Key": raw}))
    assert_401(await served.post(SENTIMENT, headers={"X-API-Key": raw}, json={"text": "up"}))
    ws = await ws_with_key(raw)
    error = await ws.receive_json_from()
    assert error["type"] == "error" and "Invalid API key" in error["error"]
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_UNAUTHORIZED}
    assert len(verifications) == 2  # once more after the revoke moved the keys' version on, then remembered


@pytest.mark.django_db(transaction=True)
async def test_a_wrong_key_on_the_edges_hot_reads_is_the_contracts_401(served):
    await sync_to_async(store_price)()
    for hot_read in (PRICE, "/prices", "/coins", "/api/market/ohlc?symbol=BTC&timeframe=1h"):
        for _ in range(2):  # unknown, then remembered as wrong
            assert_401(await served.get(hot_read, headers={"X-API-Key": "nope.wrong"}))


def test_the_contracts_bodies(settings):
    assert (InvalidKey.status, InvalidKey.message) == (401, "Invalid API key")
    assert json.loads(ratelimit.wrong_key(None).content)["detail"] == InvalidKey.detail
    assert ratelimit.wrong_key(None)["WWW-Authenticate"] == "Api-Key"
    assert ratelimit.keys_unavailable().status_code == KeysUnavailable.status == 503

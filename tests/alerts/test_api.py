"""/api/alerts over HTTP (the middleware's key check, then the views), on the real database and Redis."""

import pytest
from django.db import connections
from django.test import Client

from alerts.models import PriceAlert
from apikeys import services as key_services

from .conftest import new_key

pytestmark = pytest.mark.django_db

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def alice():
    return Client(headers={"Authorization": f"Api-Key {new_key('alice')[1]}"})


@pytest.fixture
def bob():
    return Client(headers={"X-API-Key": new_key("bob")[1]})


def create(client, **body):
    return client.post("/api/alerts", {"symbol": "BTC", "above": 70000, "webhook_url": HOOK, **body},
                       content_type="application/json")


def test_without_a_key_every_alerts_operation_is_a_401_saying_a_key_is_required():
    client = Client()
    for response in (client.get("/api/alerts"), create(client), client.get("/api/alerts/1"), client.delete("/api/alerts/1")):
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "An API key is required" and body["timestamp"]


@pytest.mark.django_db(transaction=True)  # the revoke's version change is sent on commit
def test_a_wrong_or_revoked_key_is_a_401():
    key, raw = new_key("carol")
    assert Client(headers={"X-API-Key": raw + "x"}).get("/api/alerts").status_code == 401
    assert Client(headers={"X-API-Key": raw}).get("/api/alerts").status_code == 200
    key_services.revoke_key("carol")
    response = Client(headers={"X-API-Key": raw}).get("/api/alerts")
    assert response.status_code == 401 and response.json()["error"] == "Invalid API key"


def test_creating_an_alert_returns_it_with_its_secret_once_and_then_lists_and_gets_it_without(alice):
    response = create(alice, symbol="btc-usd", source="Binance", repeat=True)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert {k: created[k] for k in ("symbol", "source", "condition", "threshold", "window", "repeat", "state",
                                    "fired_count", "last_fired", "webhook_url")} == {
        "symbol": "BTC", "source": "binance", "condition": "above", "threshold": 70000.0, "window": None, "repeat": True,
        "state": "armed", "fired_count": 0, "last_fired": None, "webhook_url": HOOK}
    listed = alice.get("/api/alerts").json()
    assert listed["count"] == 1 and listed["limit"] == 1000
    assert listed["alerts"][0]["id"] == created["id"] and "secret" not in listed["alerts"][0]
    one = alice.get(f"/api/alerts/{created['id']}").json()
    assert one == listed["alerts"][0]


def test_change_pct_needs_a_window_and_is_stored_with_it(alice):
    response = create(alice, above=None, change_pct=2.5, window="15m", symbol="ETH")
    assert response.status_code == 201, response.content
    assert response.json()["condition"] == "change_pct" and response.json()["window"] == "15m"


def test_a_key_sees_and_deletes_only_its_own_alerts(alice, bob):
    mine = create(alice).json()["id"]
    theirs = create(bob, below=100, above=None).json()["id"]
    assert [a["id"] for a in alice.get("/api/alerts").json()["alerts"]] == [mine]
    assert alice.get(f"/api/alerts/{theirs}").status_code == 404
    assert alice.delete(f"/api/alerts/{theirs}").status_code == 404
    assert PriceAlert.objects.filter(pk=theirs).exists()
    assert alice.delete(f"/api/alerts/{mine}").status_code == 204
    assert alice.get(f"/api/alerts/{mine}").status_code == 404
    assert alice.delete(f"/api/alerts/{mine}").status_code == 404
    assert bob.get("/api/alerts").json()["count"] == 1


@pytest.mark.parametrize(("body", "names"), [
    ({"above": None}, "exactly one condition"),
    ({"below": 10}, "exactly one condition"),
    ({"above": -5}, "above"),
    ({"above": "70000"}, "above"),
    ({"above": None, "change_pct": 5}, "window"),
    ({"above": None, "change_pct": 5, "window": "2d"}, "window"),
    ({"above": None, "change_pct": 5, "window": "1x"}, "window"),
    ({"window": "1h"}, "window"),
    ({"repeat": "yes"}, "repeat"),
    ({"webhook_url": "ftp://example.com/"}, "webhook_url"),
    ({"webhook_url": "not a url"}, "webhook_url"),
    ({"webhook_url": None}, "webhook_url"),
    ({"symbol": None}, "symbol"),
    ({"colour": "red"}, "colour"),
])
def test_an_invalid_alert_is_a_400_naming_the_field(alice, body, names):
    response = create(alice, **body)
    assert response.status_code == 400, response.content
    assert names in response.json()["error"]
    assert PriceAlert.objects.count() == 0


def test_a_body_that_is_not_an_object_is_a_400(alice):
    response = alice.post("/api/alerts", "[1, 2]", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]


def test_an_unknown_source_or_unlisted_symbol_is_a_404_and_an_untracked_one_a_400(alice, sandbox):
    assert create(alice, source="nyse").status_code in (400, 404)
    response = create(alice, symbol="NOSUCHCOIN")
    assert response.status_code == 404, response.content
    assert create(alice, source="kraken").status_code in (400, 404)


def test_a_private_target_is_refused_unless_the_operator_allows_it(alice, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/hook", "http://10.0.0.8/hook", "http://[::1]/hook", "http://localhost/hook"):
        response = create(alice, webhook_url=url)
        assert response.status_code == 400 and "webhook_url" in response.json()["error"], url
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    assert create(alice, webhook_url="http://127.0.0.1:8000/hook").status_code == 201


def test_a_key_may_have_at_most_alerts_per_key(alice, bob, settings):
    settings.ALERTS_PER_KEY = 2
    assert create(alice).status_code == create(alice).status_code == 201
    response = create(alice)
    assert response.status_code == 409 and "ALERTS_PER_KEY" in response.json()["error"]
    assert create(bob).status_code == 201  # per key
    alice.delete(f"/api/alerts/{alice.get('/api/alerts').json()['alerts'][0]['id']}")
    assert create(alice).status_code == 201


def test_the_schema_documents_the_alerts_operations():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["paths"]["/api/alerts"]) >= {"get", "post"}
    assert schema["paths"]["/api/alerts"]["post"]["security"] == [{"Api-Key": []}, {"X-API-Key": []}]  # not anonymous
    assert {"201", "400", "401", "404", "409"} <= set(schema["paths"]["/api/alerts"]["post"]["responses"])
    assert set(schema["paths"]["/api/alerts/{alert_id}"]) >= {"get", "delete"}
    assert "secret" in schema["components"]["schemas"]["AlertCreatedOut"]["properties"]


@pytest.mark.django_db(transaction=True)
async def test_alerts_through_the_application_as_served(served):
    from asgiref.sync import sync_to_async

    raw = (await sync_to_async(new_key)("dave"))[1]
    created = await served.post("/api/alerts", json={"symbol": "ETH", "below": 100, "webhook_url": HOOK},
                                headers={"Authorization": f"Api-Key {raw}"})
    assert created.status_code == 201, created.text
    assert created.headers["x-ratelimit-limit"] == "1000"  # counted on the key's budget
    listed = await served.get("/api/alerts", headers={"X-API-Key": raw})
    assert [a["id"] for a in listed.json()["alerts"]] == [created.json()["id"]]
    anonymous = await served.get("/api/alerts")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "An API key is required"
    await sync_to_async(connections.close_all)()  # the database connection of sync_to_async's thread

"""Keys in the operator's admin: created with the key shown once, a tier, revoked; their use shown."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apikeys import selectors, usage
from apikeys.models import ApiKey
from tests.apikeys.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator():
    client = Client()
    User.objects.create_superuser("operator", "op@example.com", "a-long-operator-password")
    client.login(username="operator", password="a-long-operator-password")
    return client


def test_adding_a_key_shows_it_once_with_its_tier(operator):
    page = operator.get("/admin/apikeys/apikey/add/").content.decode()
    assert "tiny (3/m)" in page and "pro (10000/m)" in page
    done = operator.post("/admin/apikeys/apikey/add/", {"name": "partner", "tier": "pro"}, follow=True)
    text = done.content.decode()
    shown = re.search(r"The API key for partner is: (\S+)\. ", text).group(1)
    stored = ApiKey.objects.get(name="partner")
    assert stored.tier == "pro" and ApiKey.objects.is_valid(shown)
    assert shown not in operator.get(f"/admin/apikeys/apikey/{stored.pk}/change/").content.decode()
    assert shown not in operator.get("/admin/apikeys/apikey/").content.decode()


def test_an_unknown_tier_or_a_taken_name_is_refused(operator):
    new_key("taken")
    bad = operator.post("/admin/apikeys/apikey/add/", {"name": "x", "tier": "gold"}).content.decode()
    assert "Select a valid choice" in bad
    taken = operator.post("/admin/apikeys/apikey/add/", {"name": "taken", "tier": "pro"}).content.decode()
    assert "already exists" in taken
    assert ApiKey.objects.count() == 1


def test_the_list_and_the_key_page_show_its_use(operator, client):
    raw = new_key("busy")
    for _ in range(3):
        assert client.get("/coins", HTTP_X_API_KEY=raw).status_code == 200
    listing = operator.get("/admin/apikeys/apikey/").content.decode()
    row = re.search(r"busy.*?</tr>", listing, re.S).group(0)
    assert re.search(r'field-requests_today">3<', row)
    assert "field-last_used" in row and "never" not in row
    key = ApiKey.objects.get(name="busy")
    page = operator.get(f"/admin/apikeys/apikey/{key.pk}/change/").content.decode()
    assert f"{usage.day(__import__('time').time())}: 3" in page


def test_revoking_in_the_admin_refuses_the_key_at_its_next_request(operator, client):
    raw = new_key("leaked")
    assert client.get("/coins", HTTP_X_API_KEY=raw).status_code == 200
    assert selectors.remembered(raw).good
    key = ApiKey.objects.get(name="leaked")
    done = operator.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True)
    assert "1 key(s) revoked" in done.content.decode()
    assert client.get("/coins", HTTP_X_API_KEY=raw).status_code == 401


def test_editing_a_keys_tier_applies_at_its_next_request(operator, client):
    raw = new_key("grower", "tiny")
    assert client.get("/coins", HTTP_X_API_KEY=raw)["X-RateLimit-Limit"] == "3"
    key = ApiKey.objects.get(name="grower")
    done = operator.post(f"/admin/apikeys/apikey/{key.pk}/change/", {"name": "grower", "tier": "pro"})
    assert done.status_code == 302
    client.get("/coins", HTTP_X_API_KEY=raw)  # counted on the budget it was trusted with, then verified again
    assert client.get("/coins", HTTP_X_API_KEY=raw)["X-RateLimit-Limit"] == "10000"


def test_the_librarys_own_model_has_no_page(operator):
    assert operator.get("/admin/rest_framework_api_key/apikey/").status_code == 404

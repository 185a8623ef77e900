"""The characters one request may have scored, all texts together: SENTIMENT_MAX_REQUEST_CHARS."""

import json

import pytest
from django.core.checks import run_checks

pytestmark = pytest.mark.django_db

URL = "/api/sentiment/analyze"


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def texts_of(count: int, length: int) -> list[str]:
    return [("moon " * (length // 5 + 1))[:length]] * count


def test_a_batch_with_more_characters_in_all_than_the_cap_is_400_with_the_error_body(client, settings):
    settings.SENTIMENT_MAX_REQUEST_CHARS = 20_000
    response = post(client, {"texts": texts_of(3, 7_000)})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "timestamp"} and "at most 20000 characters in all" in body["error"]


def test_a_batch_of_exactly_the_cap_is_scored(client, settings):
    settings.SENTIMENT_MAX_REQUEST_CHARS = 20_000
    response = post(client, {"texts": texts_of(2, 10_000)})
    assert response.status_code == 200 and len(response.json()["results"]) == 2


def test_with_the_defaults_a_batch_of_100_texts_filling_the_64_kib_body_is_scored(client):
    body = {"texts": texts_of(100, 650)}
    assert len(json.dumps(body).encode()) <= 64 * 1024
    assert post(client, body).status_code == 200


def test_raising_the_body_limit_does_not_raise_the_characters_a_request_may_have_scored(client, settings):
    settings.MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    response = post(client, {"texts": texts_of(100, 1_000)})
    assert response.status_code == 400 and "65536 characters" in response.json()["error"]


def sentiment_check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("sentiment.")}


def test_a_cap_under_the_longest_text_fails_the_system_check(settings):
    settings.SENTIMENT_MAX_REQUEST_CHARS = 9_999
    assert "sentiment.E002" in sentiment_check_ids()


def test_the_default_cap_passes_the_system_check():
    assert "sentiment.E002" not in sentiment_check_ids()

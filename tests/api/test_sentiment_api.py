import json

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/sentiment/analyze"


def post(client, body, raw=False, content_type="application/json"):
    return client.post(URL, body if raw else json.dumps(body), content_type=content_type)


def test_the_original_readme_example_is_bullish_with_its_response_shape(client):
    body = post(client, {"text": "Bitcoin is surging! Great bullish momentum."}).json()
    assert body["sentiment"] == "Bullish"
    assert 0.5 < body["confidence"] <= 1.0
    assert body["keywords"] == {"bullish": 2, "bearish": 0, "total": 2}


def test_a_batch_returns_results_in_the_same_order(client):
    texts = ["ETH crashes 20% as liquidations cascade", "Bitcoin is surging! Great bullish momentum.",
             "The developer call is on Thursday"]
    results = post(client, {"texts": texts}).json()["results"]
    assert [r["sentiment"] for r in results] == ["Bearish", "Bullish", "Neutral"]


def test_a_body_without_content_type_json_is_still_read_as_json(client):
    response = post(client, json.dumps({"text": "BTC to the moon"}), raw=True, content_type="text/plain")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"text": ""}, {"text": "   \n\t"}, {}, {"text": None}, {"text": 42}, {"text": ["a"]}, {"text": "x" * 10_001},
     {"texts": []}, {"texts": ["ok", ""]}, {"text": "x" * 10_001, "texts": ["ok"]}, {"texts": ["a"] * 101}, {"texts": "not a list"}, ["text"]],
)
def test_bad_text_is_400_with_the_error_body(client, body):
    response = post(client, body)
    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"error", "timestamp"}


@pytest.mark.parametrize("raw", ["{not json", '{"text": "unterminated', "\xff\xfe"])
def test_malformed_json_is_400(client, raw):
    response = post(client, raw, raw=True)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_an_empty_body_is_400_for_the_missing_text(client):
    response = post(client, "", raw=True)
    assert response.status_code == 400 and "text" in response.json()["error"]


def test_text_of_exactly_the_maximum_length_is_accepted(client):
    assert post(client, {"text": "moon " * 2000}).status_code == 200


def test_get_is_405(client):
    assert client.get(URL).status_code == 405

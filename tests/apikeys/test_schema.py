"""The OpenAPI schema declares the key headers, optional on every operation, and the 401."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_schema_declares_both_key_headers_as_optional_and_the_401(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["Api-Key"] == {**schemes["Api-Key"], "type": "apiKey", "in": "header", "name": "Authorization"}
    assert schemes["X-API-Key"]["name"] == "X-API-Key"
    for path in ("/api/market/price", "/api/market/ohlc", "/prices", "/coins"):
        operation = schema["paths"][path]["get"]
        assert operation["security"] == [{"Api-Key": []}, {"X-API-Key": []}, {}], path
        assert "401" in operation["responses"], path
    assert "401" in schema["paths"]["/api/sentiment/analyze"]["post"]["responses"]

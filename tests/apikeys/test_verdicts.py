"""The verdicts a process remembers (apikeys.selectors), against the real database."""

import pytest

from apikeys import selectors, services

pytestmark = pytest.mark.django_db


def test_a_flood_of_wrong_keys_never_evicts_a_good_keys_verdict(monkeypatch):
    monkeypatch.setattr(selectors, "MAX_REMEMBERED", 5)
    selectors.forget_verdicts()
    _key, text = services.create_key("flooded", "standard")
    assert selectors.verify(text, "v1").good
    for i in range(20):
        assert not selectors.verify(f"wrong.{i}", "v1").good
    remembered = selectors.remembered(text)
    assert remembered is not None and remembered.good  # still known: no database query needed
    assert selectors.remembered("wrong.19") is not None  # the newest wrong ones are remembered too


def test_a_good_verdict_is_trusted_for_a_bounded_time(monkeypatch):
    selectors.forget_verdicts()
    _key, text = services.create_key("bounded", "standard")
    verdict = selectors.verify(text, "v1")
    assert verdict.trusted
    monkeypatch.setattr(selectors.time, "monotonic", lambda: verdict.at + selectors.MAX_TRUST_SECONDS + 0.1)
    assert not verdict.trusted and selectors.remembered(text) is None  # asked of the database again

"""Webhook targets, signatures and the retry schedule: pure, no database, no DNS."""

import random

import pytest

from alerts.webhooks import check_target, jittered, pin_target, retry_schedule, signature, verify_signature
from market.domain.errors import InvalidInput


def resolver(*addresses):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                                     "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1"])
def test_a_target_resolving_to_a_non_public_address_is_refused(address):
    with pytest.raises(InvalidInput, match="webhook_url"):
        check_target("https://hooks.example.com/x", False, resolver(address))


def test_a_target_is_refused_if_any_of_its_addresses_is_private():
    with pytest.raises(InvalidInput):
        check_target("https://hooks.example.com/x", False, resolver("93.184.216.34", "10.0.0.1"))


def test_a_public_target_is_accepted_and_a_private_one_when_the_operator_allows_it():
    assert check_target("https://hooks.example.com/x?a=1", False, resolver("93.184.216.34")) == "https://hooks.example.com/x?a=1"
    assert check_target("http://127.0.0.1:9000/hook", True, resolver()) == "http://127.0.0.1:9000/hook"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/x", "http:///nohost", "", 42, None,
                                 "http://user:pw@example.com/", "http://example.com:99999/", "https://" + "a" * 2001])
def test_a_target_that_is_not_an_http_url_with_a_host_is_refused_even_when_private_is_allowed(url):
    with pytest.raises(InvalidInput, match="webhook_url"):
        check_target(url, True, resolver("93.184.216.34"))


def test_an_unresolvable_host_is_refused():
    def failing(host, port):
        raise InvalidInput(f"Invalid webhook_url: the host {host} cannot be resolved")

    with pytest.raises(InvalidInput, match="cannot be resolved"):
        check_target("https://nowhere.invalid/", False, failing)
    with pytest.raises(InvalidInput, match="cannot be resolved"):
        check_target("https://nowhere.invalid/", False, resolver())


def test_a_signature_verifies_with_its_secret_only_and_for_its_body_and_time_only():
    body, stamp = b'{"alert_id":1}', 1_700_000_000
    header = signature("whsec_abc", stamp, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify_signature("whsec_abc", str(stamp), header, body, now=stamp + 10)
    assert not verify_signature("whsec_other", str(stamp), header, body, now=stamp)
    assert not verify_signature("whsec_abc", str(stamp), header, body + b" ", now=stamp)
    assert not verify_signature("whsec_abc", str(stamp + 1), header, body, now=stamp)
    assert not verify_signature("whsec_abc", str(stamp), header, body, now=stamp + 301)  # a replay, too late
    assert not verify_signature("whsec_abc", "soon", header, body, now=stamp)


def test_the_retry_schedule_doubles_up_to_its_cap_and_stays_within_a_day():
    waits = retry_schedule(10, 1800, 86400)
    assert waits[:4] == [10, 20, 40, 80] and max(waits) == 1800
    assert sum(waits) <= 86400 < sum(waits) + 1800
    assert all(b == min(1800, a * 2) for a, b in zip(waits, waits[1:], strict=False))


def test_a_tiny_schedule_gives_a_few_quick_tries_and_a_zero_one_none():
    assert retry_schedule(0.01, 0.02, 0.1) == [0.01, 0.02, 0.02, 0.02, 0.02]
    assert retry_schedule(0, 1, 10) == [] and retry_schedule(5, 5, 1) == []


def test_jitter_keeps_a_wait_between_half_and_all_of_it():
    rng = random.Random(1)
    for _ in range(1000):
        assert 50 <= jittered(100, rng.random()) < 100
    assert jittered(100, 0.0) == 50


def test_a_delivery_is_pinned_to_the_address_checked_with_the_hosts_name_kept_for_http_and_tls():
    target = pin_target("https://hooks.example.com:8443/x?a=1", False, resolver("93.184.216.34", "93.184.216.35"))
    assert target.url == "https://93.184.216.34:8443/x?a=1"
    assert target.headers == {"Host": "hooks.example.com:8443"} and target.extensions == {"sni_hostname": "hooks.example.com"}
    v6 = pin_target("http://hooks.example.com/x", False, resolver("2606:2800:220:1:248:1893:25c8:1946"))
    assert v6.url == "http://[2606:2800:220:1:248:1893:25c8:1946]/x" and v6.extensions == {}
    assert pin_target("http://127.0.0.1:9000/h", True, resolver()).url == "http://127.0.0.1:9000/h"  # allowed: as it is
    with pytest.raises(InvalidInput):
        pin_target("https://hooks.example.com/x", False, resolver("10.0.0.1"))


def test_an_alerts_secret_signs_in_the_standard_webhooks_scheme_as_its_library_does():
    """The secret as create_alert makes it ("whsec_" and 48 hex digits) is valid base64: the
    Standard Webhooks key is its decoding, and the signature is the library's own."""
    from datetime import UTC, datetime

    import standardwebhooks

    from alerts.webhooks import standard_key, standard_signature

    secret, body, stamp = "whsec_" + "0123456789abcdef" * 3, b'{"alert_id":1}', 1_700_000_000
    assert 24 <= len(standard_key(secret)) <= 64
    expected = standardwebhooks.Webhook(secret).sign("d-1", datetime.fromtimestamp(stamp, UTC), body.decode())
    assert standard_signature(secret, "d-1", stamp, body) == expected

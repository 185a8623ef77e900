"""The adapters' one HTTP seam: what every exchange's requests share."""

import ssl

from market.aio import run
from market.exchanges import http


def test_clients_verify_tls_with_one_context_built_once_per_process():
    http._tls.cache_clear()

    async def fresh_client():
        return http.client()

    first, second = run(fresh_client()), run(fresh_client())  # two event loops (as the sync code has), two clients
    assert first is not second
    assert http._tls.cache_info().misses == 1  # the CA bundle was loaded once, not per client
    context = http._tls()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_request_slots_are_shared_by_every_process_through_redis():
    assert http._shared_wait("okx", 0.5) == 0  # the first request goes at once
    http.reset_state()  # another process: none of this one's memory, only what Redis holds
    assert 0.4 <= http._shared_wait("okx", 0.5) <= 0.5  # the next waits for the slot after it
    assert http._shared_wait("bybit", 0.5) == 0  # each exchange has slots of its own


def test_while_redis_is_down_a_process_paces_itself(settings, tmp_path):
    from tests.conftest import OwnRedis

    redis = OwnRedis(tmp_path)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis.url}}
    redis.stop()
    assert http._shared_wait("okx", 0.5) is None

    async def two_requests_waiting():
        await http.pace("okx", 0.2)
        await http.pace("okx", 0.2)

    reserved = http._next_slot.get("okx", 0.0)
    run(two_requests_waiting())
    assert http._next_slot["okx"] > reserved  # the process's own slots were reserved instead

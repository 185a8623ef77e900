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

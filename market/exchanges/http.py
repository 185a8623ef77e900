"""The one HTTP seam of the exchange adapters.

Every request to an exchange goes through `get_json`: one shared httpx client per event loop,
a timeout, polite pacing per exchange, back-off when the exchange says 429/418, and the mapping
of every failure to an ExchangeError with the contract's status. Tests point base URLs at the
sandbox exchange instead of patching this module.
"""

import asyncio
import functools
import math
import ssl
import threading
import time
import weakref
from decimal import Decimal
from typing import Any

import httpx
from django.core.cache import cache

from core import keys

from .errors import BAD_RESPONSE, TIMEOUT, UNREACHABLE, ExchangeError

USER_AGENT = "cryptosite/1.0 (+self-hosted market data server)"
DEFAULT_BACKOFF_SECONDS = {429: 60.0, 418: 120.0}

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = weakref.WeakKeyDictionary()
# Per exchange: monotonic time before which we do not call it (after a 429/418).
_blocked_until: dict[str, float] = {}
# Per exchange: the monotonic time reserved by the latest request, for pacing across the
# threads of one process.
_next_slot: dict[str, float] = {}
_slot_lock = threading.Lock()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of the process: building one loads the CA bundle (about 20 ms
    of CPU), and the sync code's calls each run on a fresh event loop, so with a fresh client."""
    return httpx.create_ssl_context()


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None or existing.is_closed:
        existing = httpx.AsyncClient(
            verify=_tls(),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            follow_redirects=False,
        )
        _clients[loop] = existing
    return existing


async def close_client() -> None:
    loop = asyncio.get_running_loop()
    existing = _clients.pop(loop, None)
    if existing is not None:
        await existing.aclose()


def backoff_remaining(exchange: str) -> float:
    """Seconds before this exchange may be called again: after a 429/418 to any process (the web
    server's and the worker's processes share one address, so one ban), kept in Redis; this
    process's own memory of it still holds while Redis is down."""
    local = _blocked_until.get(exchange, 0.0) - time.monotonic()
    try:
        until = cache.get(keys.exchange_backoff(exchange))
    except Exception:  # Redis down: this process's memory only
        until = None
    return max(0.0, local, (until or 0.0) - time.time())


def back_off(exchange: str, seconds: float) -> None:
    """No request to this exchange, from any process, for `seconds`."""
    _blocked_until[exchange] = time.monotonic() + seconds
    try:
        cache.set(keys.exchange_backoff(exchange), time.time() + seconds, timeout=math.ceil(seconds))
    except Exception:
        pass


def reset_state() -> None:
    """Forget this process's back-offs and pacing slots (a fresh process's state)."""
    _blocked_until.clear()
    with _slot_lock:
        _next_slot.clear()


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(1.0, float(raw))
    except ValueError:
        return DEFAULT_BACKOFF_SECONDS.get(response.status_code, 60.0)


async def pace(exchange: str, min_interval: float) -> None:
    """Reserve the next free request slot of this exchange and wait for it (every thread and event
    loop of this process shares the slots)."""
    if min_interval <= 0:
        return
    with _slot_lock:
        now = time.monotonic()
        slot = max(now, _next_slot.get(exchange, 0.0))
        _next_slot[exchange] = slot + min_interval
    if slot > now:
        await asyncio.sleep(slot - now)


async def request(
    exchange: str,
    display: str,
    url: str,
    params: dict[str, Any] | None = None,
    timeout: float = 10.0,
    min_interval: float = 0.0,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """GET `url` politely: refused while the exchange's back-off lasts, paced, a transport failure or
    a 429/418 (which starts the back-off, for every process) raised as an ExchangeError. Any other
    status comes back with its response."""
    blocked = backoff_remaining(exchange)
    if blocked > 0:
        raise ExchangeError(
            f"{display} API asked us to back off; retrying in {blocked:.0f}s", UNREACHABLE, retry_after=blocked
        )
    await pace(exchange, min_interval)
    try:
        response = await client().get(url, params=params, timeout=timeout, headers=headers)
    except httpx.TimeoutException:
        raise ExchangeError(f"Request timeout - {display} API is not responding", TIMEOUT) from None
    except (httpx.TransportError, OSError) as exc:
        raise ExchangeError(
            f"Failed to fetch data from {display}: Connection error ({type(exc).__name__})", UNREACHABLE
        ) from None
    if response.status_code in (429, 418):
        wait = _retry_after(response)
        back_off(exchange, wait)
        raise ExchangeError(f"{display} API rate limit reached; backing off {wait:.0f}s", UNREACHABLE, retry_after=wait)
    return response


def decode(display: str, response: httpx.Response) -> Any:
    """The response's JSON, numbers as Decimal, exactly as printed."""
    try:
        return response.json(parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ExchangeError(f"{display} API error: unparseable response", BAD_RESPONSE) from None


async def get_json(
    exchange: str,
    display: str,
    url: str,
    params: dict[str, Any] | None = None,
    timeout: float = 10.0,
    min_interval: float = 0.0,
    allow_status: tuple[int, ...] = (),
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """GET `url` and decode its JSON (numbers as Decimal, exactly as printed).

    Returns (status, body). Statuses in `allow_status` (an exchange's "unknown symbol"
    answers) come back to the adapter to interpret; every other failure raises.
    """
    response = await request(exchange, display, url, params, timeout, min_interval, headers)
    if response.status_code >= 400 and response.status_code not in allow_status:
        raise ExchangeError(f"{display} API error: HTTP {response.status_code}", BAD_RESPONSE)
    return response.status_code, decode(display, response)

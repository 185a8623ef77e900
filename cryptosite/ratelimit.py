"""Per-client rate limiting, counted in Redis so that every server process spends one budget.
The 429 body and headers are the original data server's.

One request costs one Redis round trip: a Lua script increments the client's counter for the
current fixed window and returns it (and, for the hot reads answered at the ASGI edge, the
rendered document in the same trip: cryptosite.edge). The edge counts the requests it looks at;
the rest are counted here, by the Django middleware, so that no request is counted twice.
"""

import ipaddress
import logging
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import _split_rate, rate_re

from .errors import error_response

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health", "/metrics", "/static/")
SCOPE_KEY = "cryptosite.ratelimit"  # a Usage the edge already counted for this request

# KEYS[1]: the client's counter for this window; KEYS[2] (optional): a document to return too;
# KEYS[3] (optional): the version of that document's data, appended to its key (market.documents).
# ARGV[1]: the counter's lifetime in seconds (the window, so it dies with it).
SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local doc = KEYS[2]
if doc and KEYS[3] then doc = doc .. ':' .. (redis.call('GET', KEYS[3]) or '0') end
if doc then return {count, redis.call('GET', doc)} end
return {count}
"""


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: int  # seconds


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """django-ratelimit's syntax: `100/m`, `10/5m`, `1000/h`, `5/d`. ValueError otherwise."""
    if not isinstance(text, str) or not rate_re.fullmatch(text.strip()):
        raise ValueError(f"Invalid rate: {text!r} (e.g. 100/m)")
    limit, period = _split_rate(text.strip())
    if limit < 1:
        raise ValueError(f"Invalid rate: {text!r} (at least one request)")
    return Rate(limit, period)


def rule_for(method: str, path: str) -> tuple[str, Rate] | None:
    """(group, rate) that counts this request, or None for what is never limited. Password
    guessing gets a much smaller budget than reading market data."""
    if path.startswith(EXEMPT_PREFIXES) or path == "/favicon.ico":
        return None
    if method == "POST" and path == "/admin/login/":
        return "admin-login", parse_rate(settings.ADMIN_LOGIN_RATE_LIMIT)
    return "http", parse_rate(settings.RATE_LIMIT)


def window_end(client: str, period: int, now: float) -> int:
    """When the client's current fixed window ends (Unix seconds). Windows are staggered per
    client (as django-ratelimit does) so that clients do not all refill at the same second."""
    offset = zlib.crc32(client.encode()) % period
    start = (int(now) - offset) // period * period + offset
    return start + period


def counter_key(group: str, rate: Rate, client: str, end: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:rl:{group}:{rate.limit}/{rate.period}:{client}:{end}"


@dataclass(frozen=True, slots=True)
class Usage:
    limit: int
    count: int
    reset: int  # Unix seconds

    @property
    def limited(self) -> bool:
        return self.count > self.limit

    @property
    def retry_after(self) -> int:
        return max(1, self.reset - int(time.time()))

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(max(0, self.limit - self.count))),
            ("X-RateLimit-Reset", str(self.reset)),
        ]

    def error_body(self) -> dict:
        return {"detail": "Too many requests. Please try again later.", "retry_after": self.retry_after}


@dataclass(frozen=True, slots=True)
class Hit:
    """What to send Redis for one request: the script's keys and arguments."""

    rate: Rate
    end: int
    keys: list[str]
    args: list[int]

    def usage(self, reply: list) -> Usage:
        return Usage(self.rate.limit, int(reply[0]), self.end)


def hit_for(group: str, rate: Rate, client: str, document: tuple[str, ...] = (), now: float | None = None) -> Hit:
    """`document`: the keys of a document to fetch in the same trip (its key, and its version's)."""
    end = window_end(f"{group}:{client}", rate.period, time.time() if now is None else now)
    return Hit(rate, end, [counter_key(group, rate, client, end), *document], [rate.period])


def client_ip(remote: str | None, forwarded_for: str | None) -> str:
    """The client's address, trusting exactly NUM_PROXIES proxies in front of us."""
    remote = remote or "0.0.0.0"
    proxies = settings.NUM_PROXIES
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


_script = None


def _count_sync(hit: Hit) -> Usage:
    """One round trip on the cache's own (synchronous) Redis client."""
    global _script
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    if _script is None or _script.registered_client is not client:
        _script = client.register_script(SCRIPT)
    return hit.usage(_script(keys=hit.keys, args=hit.args))


_warned_at = [float("-inf")]


def _warn_now_and_then(message: str, *args) -> None:
    """One warning every ten seconds at most: an outage must not flood the log with one per request."""
    if time.monotonic() - _warned_at[0] >= 10:
        _warned_at[0] = time.monotonic()
        log.warning(message, *args)


def too_many(usage: Usage):
    response = error_response(429, "Rate limit exceeded", **usage.error_body())
    response["Retry-After"] = str(usage.retry_after)
    return response


class RateLimitMiddleware:
    """Counts what the edge did not, and sets the headers of both on Django's responses."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        usage = getattr(request, "scope", {}).get(SCOPE_KEY)
        if usage is None:
            rule = rule_for(request.method, request.path)
            if rule is None:
                return self.get_response(request)
            ip = client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
            try:
                usage = _count_sync(hit_for(*rule, ip))
            except Exception as exc:  # Redis being down must not take the API down with it: fail open
                _warn_now_and_then("rate limiter unavailable (%s); requests are allowed uncounted", exc)
                return self.get_response(request)
        response = too_many(usage) if usage.limited else self.get_response(request)
        for name, value in usage.headers():
            response[name] = value
        return response

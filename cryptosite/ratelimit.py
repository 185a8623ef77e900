"""Per-client rate limiting, counted in Redis so that every server process spends one budget.
The 429 body and headers are the original data server's.

One request costs one Redis round trip: a Lua script increments the client's counter for the
current fixed window and returns it (and, for the hot reads answered at the ASGI edge, the
rendered document in the same trip: cryptosite.edge). The edge counts the requests it looks at;
the rest are counted here, by the Django middleware, so that no request is counted twice.

A request with an API key (apikeys) is counted per key, with its tier's rate, by KEYED_SCRIPT in
the same one round trip, which also counts the key's use for the day and reads the keys' version
(so that a process learns at once that a key it trusts was revoked). Which key a request carries
is apikeys.authentication.authenticate's answer, asked before the count and again with the version
the count read. A wrong key is a 401, and costs its client IP one request of the anonymous budget.
"""

import logging
import time

from django.http import HttpRequest

from apikeys import selectors as keys
from apikeys import usage as key_usage
from apikeys.authentication import AFTER_COUNT, InvalidKey, KeysUnavailable, authenticate
from apikeys.credentials import key_from_meta
from core.cache import redis_client
from core.clientip import asking_as, counted_as
from core.errors import error_response
from core.ratelimit import KEYED_SCRIPT, SCRIPT, Hit, Rate, Usage, counter_key, hit_for, parse_rate, rule_for, window_end

log = logging.getLogger(__name__)

SCOPE_KEY = "cryptosite.ratelimit"  # a Usage the edge already counted for this request
# With SCOPE_KEY, for a key's request: the keys' version the edge's count read, which the key is
# authenticated under here (from this process's verdict if it was reached under it, else verified).
SCOPE_KEYS_VERSION = "cryptosite.ratelimit.keys-version"


def hit_for_key(key: keys.Key, document: tuple[str, ...] = (), now: float | None = None) -> Hit:
    """A key's request: counted per key (its prefix) with its tier's rate, and its use recorded."""
    now = time.time() if now is None else now
    rate = parse_rate(keys.rate_of(key.tier))
    end = window_end(f"key:{key.prefix}", rate.period, now)
    used = key_usage.day_key(key.prefix, key_usage.day(now))
    return Hit(rate, end, [counter_key("key", rate, key.prefix, end), used, key_usage.last_used_key(), key_usage.version_key(),
                           *document], [rate.period, key_usage.USAGE_DAYS * 86400, key.prefix, int(now)], keyed=True)


_scripts: dict = {}


def _run_sync(hit: Hit) -> list:
    """One round trip on the cache's own (synchronous) Redis client."""
    client = redis_client()
    source = KEYED_SCRIPT if hit.keyed else SCRIPT
    script = _scripts.get(source)
    if script is None or script.registered_client is not client:
        script = _scripts[source] = client.register_script(source)
    return script(keys=hit.keys, args=hit.args)


def _count_sync(hit: Hit) -> Usage:
    return hit.usage(_run_sync(hit))


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


def wrong_key(usage: Usage | None):
    """A wrong, revoked or expired key: 401 (never served as anonymous), or 429 when its IP has
    spent its budget (guessing keys costs the guesser)."""
    if usage is not None and usage.limited:
        response = too_many(usage)
    else:
        response = error_response(InvalidKey.status, InvalidKey.message, detail=InvalidKey.detail)
        response["WWW-Authenticate"] = "Api-Key"
    for name, value in usage.headers() if usage is not None else ():
        response[name] = value
    return response


def keys_unavailable():
    return error_response(KeysUnavailable.status, KeysUnavailable.message)


class RateLimitMiddleware:
    """Counts what the edge did not, sets the headers of both on Django's responses, and resolves
    a request's API key (apikeys.authentication) once: `request.api_key` is the Key, or None (no
    key, or a path keys do not apply to); DRF's ApiKeyAuthentication takes it from there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        ip = counted_as(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
        with asking_as(ip):
            return self._call(request, ip)

    def _call(self, request: HttpRequest, ip: str):
        request.api_key = None
        scope = getattr(request, "scope", {})
        usage = scope.get(SCOPE_KEY)
        if usage is None:
            rule = rule_for(request.method, request.path)
            if rule is None:
                return self.get_response(request)
            # Keys lift the API's budget; they never lift another (admin login attempts).
            raw = key_from_meta(request.META) if rule[0] == "http" else None
            if raw is not None:
                return self._keyed(request, raw, rule, ip)
            try:
                usage = _count_sync(hit_for(*rule, ip))
            except Exception as exc:  # Redis being down must not take the API down with it: fail open
                _warn_now_and_then("rate limiter unavailable (%s); requests are allowed uncounted", exc)
                return self.get_response(request)
        elif SCOPE_KEYS_VERSION in scope:  # a key's request the edge counted: the key, under the version it read
            try:
                request.api_key = authenticate(key_from_meta(request.META) or "", scope[SCOPE_KEYS_VERSION])
            except InvalidKey:
                return wrong_key(None)
            except KeysUnavailable:
                return keys_unavailable()
        return self._respond(request, usage)

    def _respond(self, request: HttpRequest, usage: Usage):
        response = too_many(usage) if usage.limited else self.get_response(request)
        for name, value in usage.headers():
            response[name] = value
        return response

    def _keyed(self, request: HttpRequest, raw: str, rule: tuple[str, Rate], ip: str):
        """A key's request: its key (known to this process, else verified), then counted on the
        key's budget, whose round trip reads the keys' version that the key is confirmed under;
        or a 401, counted on the IP."""
        try:
            key = authenticate(raw, AFTER_COUNT)
        except InvalidKey:
            try:
                usage = _count_sync(hit_for(*rule, ip))
            except Exception as exc:
                _warn_now_and_then("rate limiter unavailable (%s); requests are allowed uncounted", exc)
                usage = None
            return wrong_key(usage)
        except KeysUnavailable:
            return keys_unavailable()
        hit = hit_for_key(key)
        try:
            reply = _run_sync(hit)
        except Exception as exc:  # Redis away: the key is still checked, the request goes uncounted
            _warn_now_and_then("rate limiter unavailable (%s); requests are allowed uncounted", exc)
            version, usage = None, None
        else:
            version, usage = hit.version(reply), hit.usage(reply)
        try:
            request.api_key = authenticate(raw, version)
        except InvalidKey:
            return wrong_key(None)
        except KeysUnavailable:
            return keys_unavailable()
        return self.get_response(request) if usage is None else self._respond(request, usage)

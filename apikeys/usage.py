"""Where a key's use is counted: in Redis, by the rate limiter's own round trip
(cryptosite.ratelimit.KEYED_SCRIPT), never in the database. Requests per UTC day (kept
USAGE_DAYS days) and the time of the last request, read here for the admin."""

import time

from core import keys
from core.cache import redis_client

USAGE_DAYS = 8


version_key = keys.api_keys_version_key  # changed by every create, edit, revoke and delete (apikeys.services)


def day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


day_key = keys.api_key_day_key
last_used_key = keys.api_keys_last_used_key  # a hash: key prefix → Unix seconds of its last request


def record(prefix: str, now: float | None = None) -> None:
    """One use outside the rate limiter's round trip (a WebSocket connection)."""
    now = time.time() if now is None else now
    pipe = redis_client().pipeline(transaction=False)
    pipe.incr(day_key(prefix, day(now)))
    pipe.expire(day_key(prefix, day(now)), USAGE_DAYS * 86400)
    pipe.hset(last_used_key(), prefix, int(now))
    pipe.execute()


def requests_by_day(prefix: str, days: int = 7, now: float | None = None) -> list[tuple[str, int]]:
    """(day, requests) for the last `days` UTC days, newest first."""
    now = time.time() if now is None else now
    days_ = [day(now - 86400 * i) for i in range(days)]
    counts = redis_client().mget([day_key(prefix, d) for d in days_])
    return [(d, int(c or 0)) for d, c in zip(days_, counts)]


def last_used(prefixes: list[str]) -> dict[str, float]:
    """Unix seconds of each key's last request (absent: never used, or not since Redis lost it)."""
    if not prefixes:
        return {}
    values = redis_client().hmget(last_used_key(), prefixes)
    return {p: float(v) for p, v in zip(prefixes, values) if v is not None}


def version() -> str:
    return (redis_client().get(version_key()) or b"").decode()

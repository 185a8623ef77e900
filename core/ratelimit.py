"""Rate limits: the syntax of a rate, and counting a request in Redis in one round trip, for every
server process alike. The interfaces count with these: the ASGI edge and the Django middleware
(cryptosite.edge, cryptosite.ratelimit) and the WebSocket handshake (streaming.admission).

A request costs one Redis round trip: a Lua script increments the client's counter for the current
fixed window and returns it (and, for the hot reads answered at the ASGI edge, the rendered
document in the same trip). A request with an API key is counted per key by KEYED_SCRIPT, which
also counts the key's use for the day and reads the keys' version.
"""

import re
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from . import keys

EXEMPT_PREFIXES = ("/health", "/metrics", "/static/")

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

# A key's request. KEYS[1]: the key's counter for this window; KEYS[2]: its requests on this UTC
# day; KEYS[3]: the hash of each key's last use; KEYS[4]: the keys' version (apikeys.usage);
# KEYS[5], KEYS[6] (optional): a document and its data's version, as above. ARGV[1]: the window;
# ARGV[2]: the day counter's lifetime; ARGV[3]: the key's prefix; ARGV[4]: now (Unix seconds).
KEYED_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
local version = redis.call('GET', KEYS[4]) or ''
local doc = KEYS[5]
if doc and KEYS[6] then doc = doc .. ':' .. (redis.call('GET', KEYS[6]) or '0') end
if doc then return {count, version, redis.call('GET', doc)} end
return {count, version}
"""


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: int  # seconds


# `<limit>/<period>`: `100/m`, `10/5m`, `1000/h`, `5/d`, `30/15s` (django-ratelimit's syntax).
# Anchored, no nested repetition: linear in the text.
RATE_SYNTAX = re.compile(r"(\d{1,9})/(\d{0,9})([smhd])")
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """A rate setting; ValueError says what is wrong (the system checks report it at start)."""
    match = RATE_SYNTAX.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"Invalid rate: {text!r} (e.g. 100/m, 10/5m, 1000/h)")
    limit, count, unit = int(match[1]), int(match[2] or 1), match[3]
    if limit < 1:
        raise ValueError(f"Invalid rate: {text!r} (at least one request)")
    if count < 1:
        raise ValueError(f"Invalid rate: {text!r} (the period must be at least one {unit})")
    return Rate(limit, count * PERIODS[unit])


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
    return keys.rate_counter_key(group, rate.limit, rate.period, client, end)


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
    args: list
    keyed: bool = False  # KEYED_SCRIPT's, whose reply has the keys' version second

    def usage(self, reply: list) -> Usage:
        return Usage(self.rate.limit, int(reply[0]), self.end)

    def body(self, reply: list) -> bytes | None:
        at = 2 if self.keyed else 1
        return reply[at] if len(reply) > at else None

    def version(self, reply: list) -> str:
        value = reply[1]
        return value.decode() if isinstance(value, bytes) else str(value)


def hit_for(group: str, rate: Rate, client: str, document: tuple[str, ...] = (), now: float | None = None) -> Hit:
    """`document`: the keys of a document to fetch in the same trip (its key, and its version's)."""
    end = window_end(f"{group}:{client}", rate.period, time.time() if now is None else now)
    return Hit(rate, end, [counter_key(group, rate, client, end), *document], [rate.period])

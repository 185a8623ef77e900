"""Who may open a WebSocket: the handshake counted against the client's rate limit, and the client
address's open connections capped (WS_MAX_CONNECTIONS_PER_IP) across every server process.

Both in one Redis round trip per handshake (ADMIT). The open connections of an address are a
sorted set of connection ids scored by when their lease ends: a process renews its connections'
leases every third of WS_CONNECTION_LEASE_SECONDS (one script call for all of them) and removes
each when it closes, however it closes (the client, the server, a drop for reading too slowly). A
process that is killed removes nothing: its entries stop counting when their lease runs out, and
each handshake first prunes the expired entries of its address. Redis's clock is the only one
read, so servers whose clocks differ agree.

A refused connection gets HTTP 429 at the handshake where the server supports the ASGI
"websocket.http.response" extension (uvicorn), with the contract's error body (and Retry-After
for the rate limit); elsewhere (daphne) it is accepted, told why in an `error` message and closed
with 1008 and the reason. When Redis cannot be reached, connections are let in uncounted, as the
HTTP rate limiter lets requests in.

Every handshake is counted against the address's anonymous budget (RATE_LIMIT), as an HTTP request
without a key is, also when it carries an API key: the consumer checks that key after the handshake.
"""

import asyncio
import json
import logging
import time
import uuid
import weakref
from dataclasses import dataclass

from django.conf import settings
from hiredis import ReplyError

from core import keys
from core.clientip import asking_as, scope_client
from core.errors import error_body
from core.pipeline import PipelinedRedis, RedisStillDown, RedisUnavailable, Script
from core.ratelimit import SCRIPT, Usage, hit_for, rule_for

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
HTTP_RESPONSE = "websocket.http.response"  # the ASGI extension a server advertises in the scope
RENEW_BATCH = 500  # connections renewed per script call: Redis serves others between the calls

# The rate limiter's own script, verbatim, as a local function: its parameters shadow KEYS and ARGV,
# so a handshake is counted exactly as an HTTP request is.
_COUNT_REQUEST = f"local function count_request(KEYS, ARGV)\n{SCRIPT}\nend\n"

# KEYS[1]: the client's rate counter (cryptosite.ratelimit); KEYS[2]: the address's open connections.
# ARGV[1]: the rate's window; ARGV[2]: its limit; ARGV[3]: the cap (0: none); ARGV[4]: this
# connection's id; ARGV[5]: the lease. Returns {requests in the window, open connections, admitted}.
ADMIT = _COUNT_REQUEST + """
local count = count_request({KEYS[1]}, {ARGV[1]})[1]
local cap = tonumber(ARGV[3])
if count > tonumber(ARGV[2]) then return {count, 0, 0} end
if cap == 0 then return {count, 0, 1} end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local open = redis.call('ZCARD', KEYS[2])
if open >= cap then return {count, open, 0} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5])))
return {count, open + 1, 1}
"""

# KEYS: addresses' sets; ARGV[1]: the lease; ARGV[2..]: the connection id in each KEYS' set, in
# order. An entry that is gone (pruned while this process was stalled past its lease, or lost with
# a Redis restart) is added back: the connection is still open and counts.
RENEW = """
local time = redis.call('TIME')
local lease = tonumber(ARGV[1])
local score = tonumber(time[1]) + tonumber(time[2]) / 1000000 + lease
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, score, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(lease))
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    usage: Usage
    open: int  # the address's open connections, this one included when admitted
    admitted: bool

    @property
    def reason(self) -> str:
        if self.usage.limited:
            return "Rate limit exceeded"
        return f"Too many connections: at most {settings.WS_MAX_CONNECTIONS_PER_IP} per client address"


class _Leases:
    """One event loop's (a server process's) Redis connection, scripts and open connections' entries."""

    def __init__(self):
        self.redis = PipelinedRedis(settings.REDIS_URL)
        self.admit = Script(self.redis, ADMIT)
        self.renew = Script(self.redis, RENEW)
        self.held: dict[str, str] = {}  # connection id -> its address's set
        self.renewing: asyncio.Task | None = None
        self.releasing: set[asyncio.Task] = set()

    def hold(self, member: str, key: str) -> None:
        self.held[member] = key
        if self.renewing is None or self.renewing.done():
            self.renewing = asyncio.get_running_loop().create_task(self._renew_while_held())

    def release(self, member: str) -> None:
        """Give the connection's slot back (without waiting: its coroutine may be being cancelled)."""
        key = self.held.pop(member, None)
        if key is None:
            return
        task = asyncio.get_running_loop().create_task(self._remove(key, member))
        self.releasing.add(task)
        task.add_done_callback(self.releasing.discard)
        if not self.held and self.renewing is not None:
            self.renewing.cancel()

    async def _remove(self, key: str, member: str) -> None:
        try:
            await self.redis.execute("ZREM", key, member)
        except (RedisUnavailable, ReplyError, OSError) as exc:  # the entry's lease runs out instead
            _warn_now_and_then("WebSocket connection cap: a closed connection's slot is freed by its lease (%s)", exc)

    async def _renew_while_held(self) -> None:
        lease = settings.WS_CONNECTION_LEASE_SECONDS
        while self.held:
            await asyncio.sleep(lease / 3)
            held = list(self.held.items())
            for start in range(0, len(held), RENEW_BATCH):
                batch = held[start:start + RENEW_BATCH]
                try:
                    await self.renew(keys=[key for _member, key in batch], args=[lease, *(member for member, _key in batch)])
                except (RedisUnavailable, ReplyError, OSError) as exc:  # tried again at the next turn
                    _warn_now_and_then("WebSocket connection cap: leases not renewed (%s)", exc)
                    break

    async def close(self) -> None:
        if self.renewing is not None:
            self.renewing.cancel()
        for task in list(self.releasing):
            await task
        await self.redis.close()


_leases: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Leases]" = weakref.WeakKeyDictionary()


def _loop_leases() -> _Leases:
    loop = asyncio.get_running_loop()
    leases = _leases.get(loop)
    if leases is None:
        leases = _leases[loop] = _Leases()
    return leases


async def close_connections() -> None:
    """This loop's Redis connection closed and its renewals stopped (a test's loop, before it ends)."""
    leases = _leases.pop(asyncio.get_running_loop(), None)
    if leases is not None:
        await leases.close()


_warned_at = [float("-inf")]


def _warn_now_and_then(message: str, *args) -> None:
    """One warning every ten seconds at most: an outage must not flood the log with one per handshake."""
    if time.monotonic() - _warned_at[0] >= 10:
        _warned_at[0] = time.monotonic()
        log.warning(message, *args)


async def admit(client: str, member: str) -> Verdict | None:
    """Count the handshake and take a slot for connection `member`; None when Redis cannot say."""
    group, rate = rule_for("GET", "/ws")
    hit = hit_for(group, rate, client)
    leases = _loop_leases()
    cap, lease = settings.WS_MAX_CONNECTIONS_PER_IP, settings.WS_CONNECTION_LEASE_SECONDS
    try:
        reply = await leases.admit(keys=[*hit.keys, keys.ws_connections_key(client)], args=[*hit.args, rate.limit, cap, member, lease])
    except (RedisUnavailable, ReplyError, OSError) as exc:
        if not isinstance(exc, RedisStillDown):
            _warn_now_and_then("WebSocket admission: Redis unavailable (%s); connections are let in uncounted", exc)
        return None
    verdict = Verdict(hit.usage(reply), int(reply[1]), bool(reply[2]))
    if verdict.admitted and cap:
        leases.hold(member, keys.ws_connections_key(client))
    return verdict


def release(member: str) -> None:
    leases = _leases.get(asyncio.get_running_loop())
    if leases is not None:
        leases.release(member)


class ConnectionLimiter:
    """ASGI middleware in front of /ws: admits a connection (admit()) or refuses it, and frees its
    slot when the application is done with it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        member, client = uuid.uuid4().hex, scope_client(scope)
        verdict = await admit(client, member)
        if verdict is not None and not verdict.admitted:
            return await refuse(scope, send, verdict)
        try:
            with asking_as(client):
                return await self.app(scope, receive, send)
        finally:
            release(member)


async def refuse(scope, send, verdict: Verdict) -> None:
    """429 at the handshake where the server can answer one, else accepted and closed with 1008."""
    usage = verdict.usage
    extra = usage.error_body() if usage.limited else {"detail": verdict.reason + "."}
    if HTTP_RESPONSE in scope.get("extensions", {}):
        body = json.dumps(error_body(verdict.reason, **extra)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if usage.limited:
            headers.append((b"retry-after", str(usage.retry_after).encode()))
            headers += [(name.lower().encode(), value.encode()) for name, value in usage.headers()]
        await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"type": "error", "error": verdict.reason, **extra})})
    await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": verdict.reason[:120]})

"""One pipelined Redis connection per server process, for the edge's one script call per request.

redis-py's asyncio client takes a connection from its pool for every command and writes and reads
it on its own: at thousands of requests a second that is two system calls per request in this
process and as many in Redis, and a pool of connections that grows with the concurrency. Redis
answers commands on one connection in the order they were sent, so every request of the process
can share one: the commands of all the requests that arrive in one turn of the event loop go out
in one write, their replies come back in one read and are handed out in order (parsed by hiredis,
redis-py's own C parser). If the connection fails, the requests waiting on it get the error (the
edge then lets Django answer them) and the next call connects again.
"""

import asyncio
import hashlib
import ssl
from collections import deque
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class RedisUnavailable(ConnectionError):
    pass


class RedisStillDown(RedisUnavailable):
    """Failed fast: connecting failed a moment ago (already reported)."""


def _command(*parts) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: "PipelinedRedis"):
        self.owner = owner
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future, float]] = deque()
        self.transport = None
        self.buffer: list[bytes] = []
        self.watchdog = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.watchdog = self.loop.call_later(self.owner.timeout, self._check)

    def send(self, command: bytes) -> asyncio.Future:
        future = self.loop.create_future()
        if not self.buffer:
            self.loop.call_soon(self._flush)
        self.buffer.append(command)
        self.waiting.append((future, self.loop.time()))
        return future

    def _flush(self) -> None:
        if self.buffer and not self.transport.is_closing():
            self.transport.write(b"".join(self.buffer))
        self.buffer.clear()

    def _check(self) -> None:
        """A reply overdue by the timeout: Redis is stuck, and the requests waiting get an error
        (closing is the only way: later replies could no longer be matched to their requests)."""
        if self.waiting and self.loop.time() - self.waiting[0][1] > self.owner.timeout:
            self.transport.abort()
            return
        self.watchdog = self.loop.call_later(self.owner.timeout / 4, self._check)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, _sent = self.waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.owner.lost(self)
        while self.waiting:
            future, _sent = self.waiting.popleft()
            if not future.done():
                future.set_exception(RedisUnavailable(f"Redis connection lost: {exc}"))


class PipelinedRedis:
    RETRY_SECONDS = 1.0

    def __init__(self, url: str, timeout: float = 2.0):
        """`url` as redis-py reads it: redis://, rediss:// (TLS) or unix://, with a user, a password
        and a database number (the path, or `?db=` for a socket)."""
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.socket_path = parts.path if parts.scheme == "unix" else None
        self.username, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        db = parse_qs(parts.query).get("db", ["0"])[0] if self.socket_path else (parts.path or "/0").lstrip("/")
        self.db = int(db or 0)
        self.timeout = timeout
        self.protocol: _Protocol | None = None
        self.connecting: asyncio.Future | None = None
        self.down_until = 0.0

    def lost(self, protocol: _Protocol) -> None:
        if self.protocol is protocol:
            self.protocol = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self.socket_path:
            opening = loop.create_unix_connection(lambda: _Protocol(self), self.socket_path)
        else:
            tls = ssl.create_default_context() if self.scheme == "rediss" else None
            opening = loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=tls)
        _transport, protocol = await asyncio.wait_for(opening, self.timeout)
        setup = []
        if self.password:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            setup.append(protocol.send(_command(*auth)))
        if self.db:
            setup.append(protocol.send(_command("SELECT", self.db)))
        for reply in await asyncio.gather(*setup):
            if isinstance(reply, hiredis.ReplyError):
                protocol.transport.close()
                raise RedisUnavailable(str(reply))
        return protocol

    async def _protocol(self) -> _Protocol:
        if self.protocol is None:
            loop = asyncio.get_running_loop()
            if loop.time() < self.down_until:  # failed a moment ago: do not make every request wait
                raise RedisStillDown("Redis unreachable (retrying shortly)")
            if self.connecting is None or self.connecting.done():
                self.connecting = asyncio.ensure_future(self._connect())
            try:
                self.protocol = await asyncio.shield(self.connecting)
            except (TimeoutError, OSError) as exc:
                self.down_until = loop.time() + self.RETRY_SECONDS
                raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
        return self.protocol

    async def execute(self, *parts):
        protocol = await self._protocol()
        reply = await protocol.send(_command(*parts))
        if isinstance(reply, hiredis.ReplyError):
            raise reply
        return reply

    async def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
        self.protocol = None


class Script:
    """A Lua script run by its SHA1, loaded again when Redis does not know it (after a restart)."""

    def __init__(self, redis: PipelinedRedis, source: str):
        self.redis, self.source = redis, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list) -> list:
        try:
            return await self.redis.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.redis.execute("EVAL", self.source, len(keys), *keys, *args)

"""The Redis channel layer with one reader per process.

channels-redis already sends a group message once per server process (the message lists the
process's member channels). But every consumer of the process waits on that shared inbox through
its own receive(): two new tasks and a turn at one shared lock per message, so each message
wakes every consumer and cancels as many lock waiters, which grows with the square of the
number of subscribers (10 s to reach 5,000 of them). Here one task per process reads the inbox
and puts each message straight into the queue of every local channel it names; a consumer's
receive() is a plain wait on its own queue. Messages for channels that no longer receive are
dropped instead of piling up. When thousands of clients subscribe at once, a call that finds
every Redis connection of the pool in use waits for one (BlockingConnectionPool) instead of
failing the consumer. Sending, groups, capacities and expiry are channels-redis's own, except:

A group message is sent in one round trip: a Lua script reads the group's members in Redis and
adds the message, naming the group, once to the inbox of each process that has members in it
(channels-redis fetches every member into the sender, three round trips, and sends each process
the list of its members: one price to 1,000 subscribers took 1.5 ms of the sender's time on an
idle machine, and takes 0.6 ms this way). The process's reader hands it to its own channels in the
group, as it knows them (it keeps its memberships, below). Members that are not process-local
channels get the message through channels-redis's own send. With several Redis shards or
per-channel capacities, group_send is channels-redis's own.

A consumer may also attach a callback for its channel instead of receiving: the reader then hands
it each message at once (streaming.consumers does, so a price fanned out to thousands of local
subscribers costs no queue, task or wake-up per subscriber).

Group memberships live in Redis, which forgets them when it restarts and expires them after
`group_expiry`: a subscriber would stay connected and hear nothing. So the layer also keeps this
process's memberships, and adds them to Redis again when its reader has lost Redis and reaches
it again, and every REJOIN_SECONDS, long before they could expire.

What it relies on in channels-redis beyond the channel layer API (tests/serving/test_pins.py checks
each, some against a real Redis): the attributes `hosts` (dicts, a URL under "address"),
`ring_size`, `prefix`, `capacity`, `channel_capacity`, `expiry` and `group_expiry`; the methods
`connection(index)`, `consistent_hash(name)`, `create_pool(index)`, `receive_single(channel)`,
`serialize(message)` and `_group_key(group)`; `BoundedQueue(maxsize)`, which drops its oldest
item when full; and its layout in Redis, which the Lua script writes into directly: a group is a
sorted set at `_group_key(group)` of its members scored by the time they joined, and a
process-local channel's messages wait in a sorted set at `prefix + non_local_name(channel)`,
scored by the time they were sent and read back by `receive_single(non_local_name(channel))`
(a message without `__asgi_channel__` comes back for the process channel itself).
"""

import asyncio
import logging
import time

from channels_redis.core import BoundedQueue, RedisChannelLayer
from redis import asyncio as aioredis
from redis.exceptions import RedisError

WRITTEN_FOR = {"channels-redis": "4.3", "channels": "4.3", "redis": "8.1"}

log = logging.getLogger(__name__)


GROUP = "__cryptosite_group__"  # the key naming the group in a message sent once per process

# KEYS[1] the group; ARGV: the message, the inboxes' key prefix, now, the group's expiry, the
# messages' expiry, an inbox's capacity. Returns the number of full inboxes (the message is dropped
# for those processes, as channels-redis drops it for a full channel), then the members that are
# not process-local channels.
GROUP_SEND_LUA = """
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - tonumber(ARGV[4]))
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local inboxes, out = {}, {0}  -- out: the full inboxes, then the other members
for _, member in ipairs(members) do
    local bang = string.find(member, '!', 1, true)
    if bang then
        inboxes[ARGV[2] .. string.sub(member, 1, bang)] = true
    else
        out[#out + 1] = member
    end
end
for inbox in pairs(inboxes) do
    redis.call('ZREMRANGEBYSCORE', inbox, 0, now - tonumber(ARGV[5]))
    if redis.call('ZCARD', inbox) < tonumber(ARGV[6]) then
        redis.call('ZADD', inbox, now, ARGV[1])
        redis.call('EXPIRE', inbox, ARGV[5])
    else
        out[1] = out[1] + 1
    end
end
return out
"""


class ProcessFanoutChannelLayer(RedisChannelLayer):
    REJOIN_SECONDS = 600.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inboxes: dict[str, BoundedQueue] = {}
        self._listeners: dict[str, object] = {}
        self._readers: dict[str, asyncio.Task] = {}
        self._groups: dict[str, set[str]] = {}  # group -> this process's channels in it
        self._rejoined = time.monotonic()

    async def group_add(self, group, channel):
        """Join now; while Redis is unreachable the membership is kept here and added once it is
        back (the subscriber is told it is subscribed, and hears the prices from then on)."""
        self._groups.setdefault(group, set()).add(channel)
        try:
            await super().group_add(group, channel)
        except (RedisError, OSError) as exc:
            log.warning("channel layer: Redis unreachable (%s); %s joins %s when it is back", exc, channel, group)
            asyncio.get_running_loop().create_task(self._join_when_back(group, channel))

    async def _join_when_back(self, group: str, channel: str) -> None:
        delay = 0.5
        while channel in self._groups.get(group, ()):
            await asyncio.sleep(delay)
            try:
                return await super().group_add(group, channel)
            except (RedisError, OSError):
                delay = min(delay * 2, 5.0)

    async def group_discard(self, group, channel):
        members = self._groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._groups[group]
        try:
            await super().group_discard(group, channel)
        except (RedisError, OSError):  # Redis unreachable: the membership lapses with group_expiry
            pass

    async def group_send(self, group, message):
        """The message once to each process with members in the group (see the module's doc)."""
        if self.ring_size != 1 or self.channel_capacity:  # shards or per-channel capacities: channels-redis's way
            return await super().group_send(group, message)
        assert self.require_valid_group_name(group), "Group name not valid"
        payload = self.serialize({**message, GROUP: group})
        full, *others = await self.connection(0).eval(GROUP_SEND_LUA, 1, self._group_key(group), payload, self.prefix,
                                                      time.time(), self.group_expiry, self.expiry, self.capacity)
        if full:
            log.info("channel layer: %d server processes' inboxes full; the message to %s dropped for them", full, group)
        for member in others:
            await self.send(member.decode(), message)

    async def rejoin(self) -> int:
        """Add every membership of this process to Redis again (idempotent), one pipeline per group."""
        count = 0
        for group, channels in list(self._groups.items()):
            if not channels:
                continue
            pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
            key = self._group_key(group)
            pipe.zadd(key, {channel: time.time() for channel in channels})
            pipe.expire(key, self.group_expiry)
            await pipe.execute()
            count += len(channels)
        self._rejoined = time.monotonic()
        return count

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # Sentinel and other forms: channels-redis's own pool
            return super().create_pool(index)
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), timeout=30, **host)

    async def receive(self, channel):
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = BoundedQueue(self.capacity)
        self._ensure_reader(self.non_local_name(channel))
        try:
            return await inbox.get()
        except asyncio.CancelledError:
            # The consumer is leaving: what was still queued for it goes too (as in channels-redis).
            self._inboxes.pop(channel, None)
            raise

    def attach(self, channel: str, callback) -> None:
        """Hand every message for `channel` (a name from new_channel()) to callback(message), a
        plain function called by the reader, until detach()."""
        self._listeners[channel] = callback
        self._ensure_reader(self.non_local_name(channel))

    def detach(self, channel: str) -> None:
        self._listeners.pop(channel, None)

    def _ensure_reader(self, process_channel: str) -> None:
        loop = asyncio.get_running_loop()
        reader = self._readers.get(process_channel)
        if reader is None or reader.done() or reader.get_loop() is not loop:
            self._readers[process_channel] = loop.create_task(self._read(process_channel))

    async def _read(self, process_channel: str) -> None:
        """Move messages from this process's inbox in Redis to the local channels they name."""
        lost = False
        while self._inboxes or self._listeners:
            try:
                if lost or time.monotonic() - self._rejoined > self.REJOIN_SECONDS:
                    joined = await self.rejoin()
                    if lost:
                        log.warning("channel layer: Redis is back; %d group memberships added again", joined)
                    lost = False
                target, message = await asyncio.wait_for(self.receive_single(process_channel), self.REJOIN_SECONDS)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                continue  # no message for a while: time to renew the memberships
            except Exception as exc:  # Redis restarting or unreachable: consumers keep waiting
                if not lost:
                    log.warning("channel layer: Redis lost (%s); retrying every second", exc)
                lost = True
                await asyncio.sleep(1)
                continue
            group = message.pop(GROUP, None)
            if group is not None:
                target = list(self._groups.get(group, ()))
            for name in target if isinstance(target, list) else [target]:
                listener = self._listeners.get(name)
                if listener is not None:
                    try:
                        listener(message)
                    except Exception:  # one consumer's failure must not stop the others' deliveries
                        log.exception("channel layer: delivering to %s failed", name)
                    continue
                inbox = self._inboxes.get(name)
                if inbox is not None:
                    inbox.put_nowait(message)

    async def flush(self):
        self._stop_reader()
        await super().flush()

    async def close_pools(self):
        self._stop_reader()
        await super().close_pools()

    def _stop_reader(self) -> None:
        """Stop the readers of the running loop (a reader of another loop ends with its loop)."""
        loop = asyncio.get_running_loop()
        for name, reader in list(self._readers.items()):
            if reader.get_loop() is loop or reader.done():
                reader.cancel()
                del self._readers[name]

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
failing the consumer. Sending, groups, capacities and expiry are channels-redis's own.
"""

import asyncio
import logging

from channels_redis.core import BoundedQueue, RedisChannelLayer
from redis import asyncio as aioredis

log = logging.getLogger(__name__)


class ProcessFanoutChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inboxes: dict[str, BoundedQueue] = {}
        self._readers: dict[str, asyncio.Task] = {}

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

    def _ensure_reader(self, process_channel: str) -> None:
        loop = asyncio.get_running_loop()
        reader = self._readers.get(process_channel)
        if reader is None or reader.done() or reader.get_loop() is not loop:
            self._readers[process_channel] = loop.create_task(self._read(process_channel))

    async def _read(self, process_channel: str) -> None:
        """Move messages from this process's inbox in Redis to the local channels they name."""
        while self._inboxes:
            try:
                target, message = await self.receive_single(process_channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting or unreachable: consumers keep waiting
                log.warning("channel layer: reading the process inbox failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for name in target if isinstance(target, list) else [target]:
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

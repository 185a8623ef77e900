"""Which ingest process holds which exchange's feed, when several run (one per host, say).

Every ingest process is a candidate for every exchange in its FEEDS. Each exchange's feed is held
by one of them at a time, on a lease in Redis (market.locks.Holding, `feed-holder:<exchange>`)
renewed every FEED_LEASE_SECONDS / 6 while the holder lives; only the holder connects to the
exchange. Once a second each candidate:

- says it is alive (a sorted set of candidates, each until its presence lapses with one lease);
- renews what it holds, and stops the feed of a lease it lost (taken over, Redis out of reach);
- counts the candidates alive, and from them its fair share: ceil(exchanges / candidates);
- takes a free exchange while it holds fewer than its share, or any exchange left free for
  FREE_GRACE_SECONDS (a share counted with a candidate that has just died);
- hands one exchange back when it holds more than its share (another candidate has joined), at
  most one every SETTLE_SECONDS, so that holders spread without flapping.

A holder that dies leaves its leases to lapse: another candidate takes each within
FEED_LEASE_SECONDS + 1 s, connects, and resyncs from the REST API (the feed's own rule on every
connect). A holder that stops (SIGTERM, SIGINT) or hands an exchange over writes what it has, says
the feed is down and releases the lease at once.
"""

import asyncio
import logging
import math
import signal
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from core import keys
from core.cache import redis_client
from core.instance import instance_name
from market.locks import Holding, holders

from .exchange import ExchangeIngest

log = logging.getLogger(__name__)

FREE_GRACE_SECONDS = 3.0
SETTLE_SECONDS = 10.0


class Candidate:
    """One ingest process's claim on the feeds of `sources`."""

    def __init__(self, sources: list[str], lease: float | None = None, name: str | None = None):
        self.sources = list(dict.fromkeys(sources))
        self.name = name or instance_name()
        self.lease = lease or settings.FEED_LEASE_SECONDS
        self.tick = self.lease / 6
        # Candidates look at the exchanges in an order of their own: two starting together each
        # take a different one first.
        turn = zlib.crc32(self.name.encode()) % max(1, len(self.sources))
        self.order = self.sources[turn:] + self.sources[:turn]
        self.holdings: dict[str, Holding] = {}
        self.ingests: dict[str, tuple[ExchangeIngest, asyncio.Task]] = {}
        self.free_since: dict[str, float] = {}
        self.candidates = 1
        self.last_change = -math.inf
        self.letting_go: dict[str, asyncio.Task] = {}
        self.redis = ThreadPoolExecutor(1, thread_name_prefix="ingest-holding")

    # --- in the Redis thread -------------------------------------------------------------------
    def step(self, busy: frozenset[str] = frozenset()) -> tuple[list[str], list[str], str | None]:
        """One round: (exchanges taken, exchanges lost, the exchange to hand back or None). `busy`:
        exchanges whose feed this process is still letting go of (neither taken nor handed back)."""
        self._announce()
        lost = [source for source, holding in self.holdings.items() if not holding.renew()]
        for source in lost:
            del self.holdings[source]
        share = math.ceil(len(self.sources) / self.candidates)
        now = time.monotonic()
        handing = None
        if (len(self.holdings) > share and self.candidates > 1 and now - self.last_change >= SETTLE_SECONDS
                and not busy):
            handing = next(reversed(self.holdings))  # the one taken last
            self.last_change = now
        taken = []
        try:
            wanted = [s for s in self.order if s not in self.holdings and s not in busy]
            current = holders([keys.feed_holding(s) for s in wanted])
        except Exception as exc:  # Redis away: nothing to take until it is back
            log.debug("feed holders unreadable: %s", exc)
            return taken, lost, handing
        for source in wanted:
            if current[keys.feed_holding(source)] is not None:
                self.free_since.pop(source, None)
                continue
            free_for = now - self.free_since.setdefault(source, now)
            if len(self.holdings) < share or free_for >= FREE_GRACE_SECONDS:
                holding = Holding(keys.feed_holding(source), self.lease, self.name)
                try:
                    if holding.acquire():
                        self.holdings[source] = holding
                        self.free_since.pop(source, None)
                        self.last_change = now
                        taken.append(source)
                except Exception as exc:
                    log.debug("could not take the %s feed: %s", source, exc)
        return taken, lost, handing

    def _announce(self) -> None:
        """Say this candidate is alive for one more lease; count those alive."""
        now_ms = int(time.time() * 1000)
        try:
            pipe = redis_client().pipeline(transaction=False)
            key = keys.ingest_candidates_key()
            pipe.zadd(key, {self.name: now_ms + int(self.lease * 1000)})
            pipe.zremrangebyscore(key, "-inf", now_ms)
            pipe.zcard(key)
            pipe.expire(key, int(self.lease * 10))
            self.candidates = max(1, pipe.execute()[2])
        except Exception as exc:  # Redis away: the count stays as it was
            log.debug("candidacy not announced: %s", exc)

    def _withdraw(self) -> None:
        for holding in self.holdings.values():
            holding.release()
        self.holdings.clear()
        try:
            redis_client().zrem(keys.ingest_candidates_key(), self.name)
        except Exception:
            pass

    # --- on the event loop ----------------------------------------------------------------------
    def start(self, source: str) -> None:
        log.info("%s holds the %s feed", self.name, source)
        ingest = ExchangeIngest(source)
        self.ingests[source] = (ingest, asyncio.create_task(ingest.run(), name=f"ingest {source}"))

    async def stop(self, source: str, why: str) -> None:
        entry = self.ingests.pop(source, None)
        if entry is not None:
            log.info("%s lets go of the %s feed: %s", self.name, source, why)
            ingest, task = entry
            await ingest.stop(task, why)

    def let_go(self, source: str, why: str, release: bool) -> None:
        """Stop a feed in a task of its own (writing what it holds may take a while: the rounds, and
        the renewals of the other leases, go on meanwhile), then release its lease if asked."""
        if source in self.letting_go:
            return
        loop = asyncio.get_running_loop()

        async def go() -> None:
            try:
                await self.stop(source, why)
            finally:
                holding = self.holdings.pop(source, None) if release else None
                if holding is not None:
                    await loop.run_in_executor(self.redis, holding.release)

        task = self.letting_go[source] = asyncio.create_task(go(), name=f"let go of {source}")
        task.add_done_callback(lambda _: self.letting_go.pop(source, None))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        log.info("%s is a candidate for the feeds of %s", self.name, ", ".join(self.sources))
        try:
            # Announce first, and look around one round later: candidates starting together see
            # each other before either takes anything.
            await loop.run_in_executor(self.redis, self._announce)
            await self._sleep(stopping)
            while not stopping.is_set():
                try:
                    taken, lost, handing = await loop.run_in_executor(self.redis, self.step, frozenset(self.letting_go))
                except Exception:  # a bug must not end the candidacy: the next round tries again
                    log.exception("feed holding round failed")
                    taken, lost, handing = [], [], None
                for source in lost:
                    self.let_go(source, "its lease was lost", release=False)
                if handing is not None:
                    self.let_go(handing, f"handed over ({self.candidates} candidates)", release=True)
                for source, (_ingest, task) in list(self.ingests.items()):
                    if task.done():  # ended by a bug (logged): let another candidate, or the next round, take it
                        log.error("the %s feed ended: %r", source, task.exception() if not task.cancelled() else None)
                        self.let_go(source, "its feed ended", release=True)
                for source in taken:
                    self.start(source)
                await self._sleep(stopping)
        finally:
            await asyncio.gather(*self.letting_go.values(), return_exceptions=True)
            for source in list(self.ingests):
                await self.stop(source, "the ingest process is stopping")
            await loop.run_in_executor(self.redis, self._withdraw)
            self.redis.shutdown(wait=False)

    async def _sleep(self, stopping: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stopping.wait(), self.tick)
        except TimeoutError:
            pass

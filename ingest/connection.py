"""One WebSocket connection to an exchange's live feed, and the markets it carries.

It subscribes (paced under the exchange's limit for client messages), reads, and hands what the
feed says to its exchange's ingest (exchange.py): trades (a gap in a market's trade ids asks for a
REST resync), candles, refusals. Hygiene: the client library answers the exchange's pings and pings
it back; a feed quiet for one poll interval is probed (where the exchange answers probes), one quiet
for 1.5 intervals, or sending only what cannot be read, is dropped and reconnected after a growing,
jittered delay; a connection near the exchange's age limit is renewed in place.
"""

import asyncio
import logging
import random
import time
from decimal import InvalidOperation
from typing import Protocol

import orjson
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from core import metrics
from market.domain.feeds import Ack, Alive, CandleUpdate, Rejected, Sequences, Trade, reconnect_delay
from market.feeds import Feed
from market.selectors import now_ms

log = logging.getLogger(__name__)

BAD_INPUT = (ValueError, KeyError, TypeError, AttributeError, IndexError, InvalidOperation, ArithmeticError)


class Owner(Protocol):
    """What a connection needs of its exchange's ingest (exchange.ExchangeIngest)."""

    feed: Feed
    sequences: Sequences
    seen_ms: int | None
    detail: str

    def interval(self) -> float: ...

    async def resync(self, symbols: list[str]) -> None: ...

    def connection_live(self) -> None: ...

    def connection_down(self, detail: str) -> None: ...

    def bad_message(self, detail: str) -> None: ...

    def gap(self, symbol: str) -> None: ...

    def offer_trade(self, trade: Trade, received: int) -> None: ...

    def offer_candle(self, update: CandleUpdate, received: int) -> None: ...


class Connection:
    """One WebSocket connection to a feed and the markets it carries ({market id: symbol})."""

    def __init__(self, owner: Owner, number: int):
        self.owner, self.number = owner, number
        self.feed: Feed = owner.feed
        self.markets: dict[str, str] = {}
        self.ws = None
        self.live = False
        self.heard = time.monotonic()
        self.probed = False
        self.req_id = number * 1_000_000
        self.send_lock = asyncio.Lock()
        self.next_send = 0.0
        self.task: asyncio.Task | None = None
        self.renew_at: float | None = None
        self.stalled, self.stall_detail = False, ""
        self.live_at = 0.0

    def _req(self, count: int = 1) -> int:
        self.req_id += count
        return self.req_id

    async def send(self, messages: list[dict]) -> None:
        """Client messages, paced under the exchange's published limit."""
        async with self.send_lock:
            for message in messages:
                wait = self.next_send - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.next_send = time.monotonic() + 1.0 / self.feed.sends_per_second
                if self.ws is not None:
                    await self.ws.send(orjson.dumps(message).decode())

    async def add(self, markets: dict[str, str]) -> None:
        self.markets.update(markets)
        if self.ws is not None and markets:
            for symbol in markets.values():
                self.owner.sequences.reset(symbol)
            await self.send(self.feed.subscribe(list(markets), self._req(20)))

    async def remove(self, market_ids: list[str]) -> None:
        for market in market_ids:
            self.markets.pop(market, None)
        if self.ws is not None and market_ids:
            await self.send(self.feed.unsubscribe(market_ids, self._req(20)))
            if not self.markets:
                await self.ws.close()

    async def run(self) -> None:
        attempt = 0
        while self.markets:
            planned = self.stalled = False
            try:
                async with connect(self.feed.url, open_timeout=10, close_timeout=1, ping_interval=20, ping_timeout=20,
                                   max_size=2**23, max_queue=1024) as ws:
                    self.ws, self.live, self.probed = ws, False, False
                    self.heard = time.monotonic()
                    if self.feed.max_age_seconds:
                        self.renew_at = time.monotonic() + self.feed.max_age_seconds * random.uniform(0.97, 1.0)
                    for symbol in self.markets.values():
                        self.owner.sequences.reset(symbol)
                    await self.send(self.feed.subscribe(list(self.markets), self._req(20)))
                    watchdog = asyncio.create_task(self._watch())
                    resync = asyncio.create_task(self.owner.resync(list(self.markets.values())))
                    try:
                        async for raw in ws:
                            self._on_message(raw, resync)
                            if attempt and self.live and time.monotonic() - self.live_at > 10:
                                attempt = 0  # healthy for a while: the next failure starts the back-off over
                    finally:
                        watchdog.cancel()
                    planned = self.renew_at is not None and time.monotonic() >= self.renew_at
                    reason, detail = "closed", "the exchange closed the connection"
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                reason, detail = type(exc).__name__, f"connection failed: {exc!s:.200}"
            except Exception as exc:  # a bug must not end the feed for good: log it, reconnect
                log.exception("%s feed connection failed", self.feed.name)
                reason, detail = "error", f"{type(exc).__name__}: {exc!s:.200}"
            finally:
                self.ws = None
                was_live, self.live = self.live, False
            if not self.markets:
                break
            if planned:
                metrics.FEED_RECONNECTS.labels(self.feed.name, "renewal").inc()
                log.info("%s feed: renewing the connection before the exchange's limit", self.feed.name)
                continue  # at once: the resync after reconnecting covers the moment in between
            if self.stalled:
                reason, detail = "silent", self.stall_detail
            metrics.FEED_RECONNECTS.labels(self.feed.name, reason).inc()
            self.owner.connection_down(detail)
            attempt += 1
            delay = reconnect_delay(attempt, cap=settings.FEED_RECONNECT_MAX_SECONDS)
            log.warning("%s feed %s (%s); reconnecting in %.1fs", self.feed.name,
                        "lost" if was_live else "unavailable", detail, delay)
            await asyncio.sleep(delay)

    async def _watch(self) -> None:
        try:
            await self._watch_forever()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave a silent feed undetected: drop the connection
            log.exception("%s feed watchdog failed", self.feed.name)
            self.ws.transport.abort()

    async def _watch_forever(self) -> None:
        """Probe a quiet feed; drop a silent one; renew a connection near the exchange's limit."""
        while True:
            interval = self.owner.interval()
            await asyncio.sleep(min(0.5, interval / 4))
            quiet = time.monotonic() - self.heard
            if self.renew_at is not None and time.monotonic() >= self.renew_at:
                await self.ws.close()
                return
            if quiet > 1.5 * interval:
                self.stalled, self.stall_detail = True, f"no message for {quiet:.1f}s"
                self.ws.transport.abort()  # a stalled peer would not answer a closing handshake
                return
            if quiet > interval and not self.probed:
                probe = self.feed.probe(self._req())
                self.probed = True
                if probe is not None:
                    await self.send([probe])

    def _on_message(self, raw: str | bytes, resync: asyncio.Task) -> None:
        feed, owner = self.feed, self.owner
        metrics.FEED_MESSAGES.labels(feed.name).inc()
        received = now_ms()
        try:
            events = feed.parse(feed.decode(raw), self.markets, received)
        except BAD_INPUT as exc:
            metrics.FEED_BAD_MESSAGES.labels(feed.name).inc()
            owner.bad_message(f"{exc!r:.120}")
            return  # not a sign of life: a feed sending only garbage goes silent and is replaced
        self.heard, self.probed = time.monotonic(), False
        owner.seen_ms = received
        for event in events:
            if isinstance(event, Trade):
                new, gap = owner.sequences.check(event.symbol, event.seq)
                if not new:
                    continue
                if gap:
                    metrics.FEED_GAPS.labels(feed.name).inc()
                    owner.gap(event.symbol)
                owner.offer_trade(event, received)
            elif isinstance(event, CandleUpdate):
                owner.offer_candle(event, received)
            elif isinstance(event, Rejected):
                owner.detail = event.detail
                log.warning("%s feed refused a request: %s", feed.name, event.detail)
        if not self.live and resync.done() and any(isinstance(e, (Ack, Alive, Trade, CandleUpdate)) for e in events):
            self.live, self.live_at = True, time.monotonic()
            owner.connection_live()

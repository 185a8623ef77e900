"""One exchange's ingest: the connection(s) to its live feed for every polled market (one unless
the exchange's per-connection stream limit needs more; ccxt.pro's for an exchange with no native
feed, ccxt_connection.py), the storage throttles, the writer thread,
the REST resync, and the markets it follows.

Each price the storage throttle lets through is published at once from the event loop (the
broadcaster's coroutine form), and stored by the poller's own writes (market.prices'
record_feed_prices, then market.candles' record_feed_candles, whose candles then go to the
broadcaster) on one writer thread per exchange, under the exchange's write lease: one write path,
not two, and a publish never waits for the database. Each market's newest trade is also served by
`/api/market/price` within LIVE_PRICE_SECONDS, ahead of the storage throttle. A reconnect, or a gap
in a market's trade ids, triggers a REST resync of the latest prices (and, for a feed without
candles, the open candles). Markets added or removed in the admin are subscribed or dropped within
two seconds. Whether the feed is live goes to every process through Redis (market.feedstate).
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

from core import metrics
from market import aio, documents, feedstate, selectors
from market.candles import fetch_open_candles, record_feed_candles, store_candles
from market.domain.feeds import CandleUpdate, Sequences, Throttle, Trade
from market.domain.timeframes import TIMEFRAMES
from market.exchanges import ExchangeError, get_exchange
from market.feeds import CcxtFeed, get_feed
from market.locks import Lease
from market.prices import record_feed_prices
from market.selectors import now_ms
from market.tasks import broadcaster, evaluate_alerts, live_broadcaster
from market.ticks import StoredTick

from .ccxt_connection import CcxtConnection
from .connection import Connection

log = logging.getLogger(__name__)

MARKETS_REFRESH_SECONDS = 2.0
STATE_PUBLISH_SECONDS = 1.0
LIVE_PRICE_SECONDS = 0.1  # the newest trade of each market is served this often (storage: TICK_MIN_INTERVAL)
WRITE_LEASE_SECONDS = 30
PUBLISH_TIMEOUT_SECONDS = 2.0
# The writer starts a batch this long after the prices were published. Measured on 2 cores, 1,000
# subscribers (bench/bench_ingest.py): at once, p99 47-78 ms; 0.08 s later, 32-46 ms (3 paired runs
# each; the bare relay in the same runs gained as much: it shares the cores with the writes).
WRITE_AFTER_SECONDS = 0.1


class ExchangeIngest:
    """One exchange's feed: its connections, the throttles and the writer thread."""

    def __init__(self, source: str):
        self.source = source
        self.feed = get_feed(source)
        tick_ms = int(settings.TICK_MIN_INTERVAL * 1000)
        self.trades: Throttle[str, Trade] = Throttle(tick_ms)
        self.candles: Throttle[tuple, CandleUpdate] = Throttle(tick_ms)
        self.ready_trades: dict[str, Trade] = {}
        self.ready_candles: dict[tuple, CandleUpdate] = {}
        self.unwritten: list[Trade] = []  # published, for the writer, oldest first
        self.unwritten_received: int | None = None
        self.writing: asyncio.Task | None = None
        self.published_ms: dict[str, int] = {}  # the trade time of the price published last, per market
        self.received: dict[str, int] = {}
        self.to_serve: dict[str, StoredTick] = {}  # the newest trade per market, to be served
        self.served_ms: dict[str, int] = {}  # the trade time of the price served last, per market
        self.sequences = Sequences()
        self.connections: list[Connection] = []
        self.writer = ThreadPoolExecutor(1, thread_name_prefix=f"ingest-write-{source}")
        self.rest = ThreadPoolExecutor(1, thread_name_prefix=f"ingest-rest-{source}")
        # The state every second and the market list: never behind a slow REST resync.
        self.control = ThreadPoolExecutor(1, thread_name_prefix=f"ingest-control-{source}")
        self.server = ThreadPoolExecutor(1, thread_name_prefix=f"ingest-serve-{source}")
        self.candle_open: dict[tuple[str, str], int] = {}
        # The open candles the feed does not carry move with each stored price.
        self.moved_timeframes = tuple(tf for tf in TIMEFRAMES if tf not in self.feed.candle_timeframes)
        self.wake = asyncio.Event()
        self.live_since: int | None = None
        self.down_since: int | None = now_ms()
        self.seen_ms: int | None = None
        self.detail = "starting"
        self.resync_wanted: set[str] = set()
        self.resync_wake = asyncio.Event()
        self.last_bad_log = 0.0
        self.poll_interval = settings.POLL_INTERVAL
        self.stopped = False

    def interval(self) -> float:
        """The exchange's poll interval (read with the markets, off the event loop)."""
        return self.poll_interval

    # --- state -----------------------------------------------------------------------------
    def connection_live(self) -> None:
        if self.connections and all(c.live for c in self.connections if c.markets) and self.live_since is None:
            self.live_since, self.down_since, self.detail = now_ms(), None, ""
            metrics.FEED_LIVE.labels(self.source).set(1)
            log.info("%s feed is live", self.source)
            self.publish_soon()

    def connection_down(self, detail: str) -> None:
        if self.live_since is not None or self.down_since is None:
            self.down_since = now_ms()
        self.live_since = None
        self.detail = detail
        metrics.FEED_LIVE.labels(self.source).set(0)
        self.publish_soon()

    def publish_soon(self) -> None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(self.control, self.publish_state)

    def publish_state(self) -> None:
        try:
            feedstate.publish_feed_state(self.source, self.live_since, self.seen_ms, self.down_since, self.detail)
        except Exception as exc:  # Redis away: the state is published again within a second of its return
            log.debug("feed state of %s not published: %s", self.source, exc)

    def bad_message(self, detail: str) -> None:
        if time.monotonic() - self.last_bad_log > 10:
            self.last_bad_log = time.monotonic()
            log.warning("%s feed sent a message that could not be read: %s", self.source, detail)

    # --- data ------------------------------------------------------------------------------
    def offer_trade(self, trade: Trade, received: int) -> None:
        for waiting in (self.trades.held(trade.symbol), self.ready_trades.get(trade.symbol)):
            if waiting is not None and waiting.timestamp_ms >= trade.timestamp_ms:
                return  # an older price (a REST resync's) never replaces a newer one waiting to be written
        if trade.timestamp_ms > self.served_ms.get(trade.symbol, -1):
            self.to_serve[trade.symbol] = StoredTick(self.source, trade.symbol, trade.price, trade.timestamp_ms, received)
            self.served_ms[trade.symbol] = trade.timestamp_ms
        out = self.trades.offer(trade.symbol, trade, received)
        if out is not None:
            self.ready_trades[trade.symbol] = out
            self.received[trade.symbol] = received
        self.wake.set()  # to write it now, or to time the write of the one held

    def offer_candle(self, update: CandleUpdate, received: int) -> None:
        series = (update.symbol, update.timeframe)
        # A candle that just closed, or the first of a new period, is written at once; an open one
        # at most once per TICK_MIN_INTERVAL, the newest. A held update of the candle before is
        # written first, never dropped.
        rolled = self.candle_open.get(series) != update.candle.open_time
        if rolled:
            held = self.candles.take(series)
            if held is not None:
                self.ready_candles[(*series, held.candle.open_time)] = held
            self.candle_open[series] = update.candle.open_time
        out = self.candles.offer(series, update, received, force=update.candle.closed or rolled)
        if out is not None:
            self.ready_candles[(*series, update.candle.open_time)] = out
        self.wake.set()

    def gap(self, symbol: str) -> None:
        self.resync_wanted.add(symbol)
        self.resync_wake.set()

    async def flush_forever(self) -> None:
        """Each price the throttle lets through is published at once, from this loop, and queued
        for the writer; a publish never waits for storage, and storage never drops a price that
        was published (what the writer has not taken yet waits for it, in order)."""
        while True:
            due = [t for t in (self.trades.next_due_ms(), self.candles.next_due_ms()) if t is not None]
            timeout = max(0.0, (min(due) - now_ms()) / 1000) if due else None
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass
            self.wake.clear()
            now = now_ms()
            trades = dict(self.ready_trades)
            for trade in self.trades.due(now):
                current = trades.get(trade.symbol)
                if current is None or trade.timestamp_ms > current.timestamp_ms:  # the newest per market
                    trades[trade.symbol] = trade
                    self.received[trade.symbol] = now
            self.ready_trades.clear()
            for update in self.candles.due(now):
                self.ready_candles[(update.symbol, update.timeframe, update.candle.open_time)] = update
            if trades:
                # Queued before publishing: a feed let go of mid-publish (ExchangeIngest.stop) still
                # writes them. The writer starts WRITE_AFTER_SECONDS after this, publishing first.
                self.unwritten.extend(trades.values())
                self.unwritten_received = min([self.unwritten_received or now,
                                               *(self.received.get(s, now) for s in trades)])
                await self.publish_live(trades.values())
            if (self.unwritten or self.ready_candles) and (self.writing is None or self.writing.done()):
                self.writing = asyncio.create_task(self.write_pending())

    async def publish_live(self, trades) -> None:
        """The prices to the WebSocket groups now, each market's only if newer than the last
        published (a REST resync's price never takes a subscriber back in time)."""
        fresh = [StoredTick(self.source, t.symbol, t.price, t.timestamp_ms, self.received.get(t.symbol, t.timestamp_ms))
                 for t in sorted(trades, key=lambda t: t.timestamp_ms)
                 if t.timestamp_ms > self.published_ms.get(t.symbol, -1)]
        if not fresh:
            return
        for tick in fresh:
            self.published_ms[tick.symbol] = tick.timestamp_ms
        try:
            await asyncio.wait_for(live_broadcaster()(ticks=fresh), PUBLISH_TIMEOUT_SECONDS)
        except Exception as exc:  # Redis away: subscribers get the prices from their return on
            log.debug("%s: %d live prices not published: %s", self.source, len(fresh), exc)

    async def write_pending(self) -> None:
        """Hand what is queued to the writer thread, one batch at a time, until nothing is left
        (a slow database makes the batches bigger, never drops a price). Each batch starts
        WRITE_AFTER_SECONDS after the publishing that queued it, so that the database work does
        not compete with the fan-out of those prices for the CPU."""
        loop = asyncio.get_running_loop()
        while self.unwritten or self.ready_candles:
            await asyncio.sleep(WRITE_AFTER_SECONDS)
            trades, received = self.unwritten, self.unwritten_received or now_ms()
            pending = self.ready_candles
            self.unwritten, self.unwritten_received, self.ready_candles = [], None, {}
            if not await loop.run_in_executor(self.writer, self.write, trades, list(pending.values()), received):
                # Not written (the write lease busy: a host killed while writing holds it until it
                # expires): queued again, before what came meanwhile, never dropped once published.
                self.unwritten = trades + self.unwritten
                self.unwritten_received = received
                self.ready_candles = {**pending, **self.ready_candles}

    def write(self, trades: list[Trade], candles: list[CandleUpdate], received: int) -> bool:
        """Store the prices (already published), then the candles, which are published once
        stored. False when the write lease stayed busy: nothing was written, to try again."""
        try:
            with Lease(f"poll:{self.source}", WRITE_LEASE_SECONDS, wait=WRITE_LEASE_SECONDS, renew=False) as held:
                if not held:
                    log.warning("%s feed: write lease busy for %ss; batch kept for the next try", self.source,
                                WRITE_LEASE_SECONDS)
                    return False
                ticks = record_feed_prices(self.source, trades, received) if trades else []
                if ticks:
                    evaluate_alerts()(ticks)
                changed = record_feed_candles(self.source, ticks, candles, self.moved_timeframes)
            broadcaster()(candles=changed)
        except Exception as exc:  # the database or Redis is away: this batch is lost, the feed goes on
            close_old_connections()
            log.warning("%s feed: %d prices and %d candles not stored: %s", self.source, len(trades), len(candles), exc)
        return True

    # --- REST resync -------------------------------------------------------------------------
    async def resync(self, symbols: list[str]) -> None:
        """The latest prices from the REST API, offered like the feed's own trades (the same
        throttle, the same writer), then the open candles the feed does not carry."""
        if not symbols:
            return
        loop = asyncio.get_running_loop()
        quotes = await loop.run_in_executor(self.rest, self._fetch_prices, symbols)
        if self.stopped:  # let go of meanwhile (a connection's resync is a task of its own)
            return
        received = now_ms()
        for quote in quotes:
            self.offer_trade(Trade(quote.symbol, quote.price, quote.timestamp_ms or received), received)
        if self.moved_timeframes:
            loop.run_in_executor(self.rest, self._resync_candles, symbols)

    def _fetch_prices(self, symbols: list[str]) -> list:
        try:
            return aio.run(get_exchange(self.source).fetch_quotes(symbols))
        except Exception as exc:  # the exchange's REST API away: the feed goes on
            log.warning("%s price resync of %d markets failed: %s", self.source, len(symbols), exc)
            return []

    def _resync_candles(self, symbols: list[str]) -> None:
        try:
            fetched = fetch_open_candles(self.source, symbols, self.moved_timeframes, now_ms())
            with Lease(f"poll:{self.source}", WRITE_LEASE_SECONDS, wait=WRITE_LEASE_SECONDS, renew=False) as held:
                if not held:
                    return
                changed = store_candles(self.source, fetched)
            broadcaster()(ticks=[], candles=changed)
        except Exception as exc:
            close_old_connections()
            log.warning("%s candle resync of %d markets failed: %s", self.source, len(symbols), exc)

    async def resync_forever(self) -> None:
        while True:
            await self.resync_wake.wait()
            self.resync_wake.clear()
            symbols, self.resync_wanted = sorted(self.resync_wanted), set()
            log.info("%s feed skipped trades on %s: resyncing from the REST API", self.source, ", ".join(symbols))
            await self.resync(symbols)

    # --- markets ----------------------------------------------------------------------------
    async def follow_markets(self) -> None:
        """Subscribe to the polled markets, and follow the admin's changes to them."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                wanted = await loop.run_in_executor(self.control, self._wanted)
                # In a thread: the adapter's HTTP seam reads its shared back-off from Redis, blocking.
                listing = await loop.run_in_executor(self.control, lambda: aio.run(get_exchange(self.source).listing()))
                await self.apply({self.feed.market_id(s, listing[s]): s for s in wanted if s in listing})
            except (ExchangeError, OSError) as exc:
                self.detail = f"market listing unavailable: {exc}"
            except Exception as exc:  # the database away: keep the markets we have
                log.warning("%s feed: could not read the polled markets: %s", self.source, exc)
            await asyncio.sleep(MARKETS_REFRESH_SECONDS)

    def _wanted(self) -> list[str]:
        try:
            self.poll_interval = selectors.poll_interval(self.source)
            return selectors.polled_symbols(self.source)
        finally:
            close_old_connections()

    async def apply(self, wanted: dict[str, str]) -> None:
        held = {m for c in self.connections for m in c.markets}
        for conn in self.connections:
            gone = [m for m in conn.markets if m not in wanted]
            if gone:
                for market in gone:
                    symbol = conn.markets[market]
                    self.trades.forget(symbol)
                    self.sequences.reset(symbol)
                await conn.remove(gone)
        added = {m: s for m, s in wanted.items() if m not in held}
        capacity = max(1, self.feed.max_streams // self.feed.streams_per_market())
        for conn in self.connections:
            room = capacity - len(conn.markets)
            if added and room > 0:
                part = dict(list(added.items())[:room])
                for market in part:
                    added.pop(market)
                await conn.add(part)
                if conn.task is None or conn.task.done():
                    conn.task = asyncio.create_task(conn.run())
        while added:
            conn = (CcxtConnection if isinstance(self.feed, CcxtFeed) else Connection)(self, len(self.connections))
            part = dict(list(added.items())[:capacity])
            for market in part:
                added.pop(market)
            conn.markets.update(part)
            self.connections.append(conn)
            conn.task = asyncio.create_task(conn.run())
        if not any(c.markets for c in self.connections) and self.live_since is not None:
            self.connection_down("no markets to follow")

    def shutdown(self) -> None:
        """Close the threads' database connections and stop the threads (the process is stopping)."""
        for pool in (self.writer, self.rest, self.control, self.server):
            try:
                pool.submit(connections.close_all).result(timeout=30)
            except Exception:  # a thread stuck on a dead database: it dies with the process
                pass
            pool.shutdown(wait=False)

    async def serve_forever(self) -> None:
        """`/api/market/price` serves each market's newest trade within LIVE_PRICE_SECONDS of its
        arrival (the documents only: never older than what is stored, see documents.serve_live)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(LIVE_PRICE_SECONDS)
            if self.to_serve:
                ticks, self.to_serve = list(self.to_serve.values()), {}
                try:
                    await loop.run_in_executor(self.server, documents.serve_live, ticks)
                except Exception as exc:  # Redis away: the stored prices are served when it is back
                    log.debug("%s live prices not served: %s", self.source, exc)

    async def publish_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(self.control, self.publish_state)
            await asyncio.sleep(STATE_PUBLISH_SECONDS)

    async def stop(self, task: asyncio.Task, why: str) -> None:
        """Let go of the feed (its lease lost or handed over, or the process stopping): close the
        connections, publish and write what was received, say the feed is down, close the threads."""
        loop = asyncio.get_running_loop()
        self.stopped = True
        running = [task, *(c.task for c in self.connections if c.task is not None)]
        for each in running:
            each.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        now = now_ms()
        trades = {**self.ready_trades}
        for trade in self.trades.due(2**62):  # what the storage throttle held back
            if trade.symbol not in trades or trade.timestamp_ms > trades[trade.symbol].timestamp_ms:
                trades[trade.symbol] = trade
        for update in self.candles.due(2**62):
            self.ready_candles[(update.symbol, update.timeframe, update.candle.open_time)] = update
        if trades:
            await self.publish_live(trades.values())
        unwritten, candles = [*self.unwritten, *trades.values()], list(self.ready_candles.values())
        self.unwritten, self.ready_trades, self.ready_candles = [], {}, {}
        if unwritten or candles:  # after any batch the writer is still on (one thread: in order)
            await loop.run_in_executor(self.writer, self.write, unwritten, candles, self.unwritten_received or now)
        self.connection_down(why)
        await loop.run_in_executor(self.control, self.publish_state)
        metrics.FEED_LIVE.labels(self.source).set(0)
        await loop.run_in_executor(None, self.shutdown)

    async def run(self) -> None:
        try:
            await asyncio.gather(self.follow_markets(), self.flush_forever(), self.resync_forever(),
                                 self.publish_forever(), self.serve_forever())
        finally:
            if self.writing is not None:
                self.writing.cancel()

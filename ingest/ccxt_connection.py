"""The live feed of an exchange ccxt serves, through ccxt.pro: connection.py's part for the native
feeds, to the same exchange ingest (exchange.py), alike seen from outside. ccxt.pro holds the
WebSocket, subscribes, keeps it alive its own way and parses what the exchange sends; ours are:

- The watch (market.feeds.viaccxt): `watch_trades_for_symbols` (one subscription request for the
  markets added together, or a few where the exchange caps one, then a waiting call per market, so
  a quiet market's trade never waits for a busy one's), else `watch_trades` per market, else the
  last price of `watch_tickers` / `watch_ticker`. An exchange with none is left to the REST
  poller, and its feed state says so.
- A fresh ccxt client per connection, always closed; a REST resync on each (re)connect; live once
  the resync is done and the exchange has spoken (its subscription answer counts, as the native
  feeds' Ack); a failure reported down, then a reconnect after the native feeds' growing, jittered
  delay. The watchdog is connection.py's: quiet for a poll interval, the exchange is sent ccxt's own
  keepalive ping; for 1.5, the connection is dropped. Every frame counts (pongs too): a quiet market
  on a working connection is no error.
- Prices keep the exchange's digits (ccxt's `number` is `str`). ccxt hands back a market's recent
  trades: each is taken once, by time and id. ccxt's trade ids are no gapless sequence on every
  exchange (OKX's skip by the trades a push aggregates): there is no gap detection.
- The markets are the REST adapter's (market.exchanges.viaccxt, loaded through the adapters' HTTP
  seam): this client makes no REST request of its own.

Only ccxt.pro's documented API is used here; the client class and what the watchdog reads of ccxt.pro's
internals (when a WebSocket last heard a frame, its keepalive probe) are serving.ccxt_client's, pinned
to the ccxt version it was written for.
"""

import asyncio
import logging
import time

from django.conf import settings

from core import metrics
from market import aio
from market.domain.feeds import reconnect_delay
from market.exchanges import get_exchange
from market.feeds import CcxtFeed
from market.selectors import now_ms
from serving import ccxt_client

from .connection import BAD_INPUT, Owner

log = logging.getLogger(__name__)

# Each watch's unsubscription: ccxt's `has` for it, its method, whether it takes a list of markets.
UNWATCHES = {"watchTradesForSymbols": ("unWatchTradesForSymbols", "un_watch_trades_for_symbols", True),
             "watchTrades": ("unWatchTrades", "un_watch_trades", False),
             "watchTickers": ("unWatchTickers", "un_watch_tickers", True),
             "watchTicker": ("unWatchTicker", "un_watch_ticker", False)}
TRADES_KEPT = 100  # ccxt's cache of recent trades per market (only the newest price matters to us)
CLOSE_SECONDS = 5.0  # a stalled peer never answers a closing handshake: the close goes on in the background
_told: set[str] = set()  # the exchanges logged as having no live feed in ccxt


class CcxtConnection:
    """One ccxt.pro client for the exchange's feed and the markets it carries ({ccxt symbol: ours})."""

    def __init__(self, owner: Owner, number: int):
        self.owner, self.number = owner, number
        self.feed: CcxtFeed = owner.feed
        self.markets: dict[str, str] = {}
        self.live, self.live_at = False, 0.0
        self.task: asyncio.Task | None = None
        self.client = None  # the ccxt client of the connection open now
        self.kind: str | None = None
        self.watchers: dict[str, asyncio.Task] = {}  # per market (or "*<batch>" for watch_tickers)
        self.chores: set[asyncio.Task] = set()  # subscription and unsubscription requests in flight
        self.ended: asyncio.Future | None = None
        self.taken: dict[str, tuple[int, set]] = {}  # per market: the newest trade time taken, its ids
        self.heard_ms, self.spoke = 0, False  # spoke: the exchange said something on the connection open now
        self.resync: asyncio.Task | None = None
        self.stalled, self.stall_detail = False, ""

    # --- markets ----------------------------------------------------------------------------
    async def add(self, markets: dict[str, str]) -> None:
        self.markets.update(markets)
        if self.client is not None and markets:
            self._watch(list(markets))

    async def remove(self, market_ids: list[str]) -> None:
        for market in market_ids:
            self.markets.pop(market, None)
            self.taken.pop(market, None)
            watcher = self.watchers.pop(market, None)
            if watcher is not None:
                watcher.cancel()
        if self.client is None or not market_ids:
            return
        if not self.markets:
            self._end()
        elif self.kind == "watchTickers":
            self._watch([])  # again, for the markets left
        self._chore(self._unwatch(self.client, market_ids))

    def _watch(self, symbols: list[str]) -> None:
        client, kind = self.client, self.kind
        if kind == "watchTickers":
            # One watch of all the markets, or one per batch where the exchange takes fewer at once:
            # all started again for the markets there are now.
            for key in [key for key in self.watchers if key.startswith("*")]:
                self.watchers.pop(key).cancel()
            for number, batch in enumerate(self.feed.subscribe_batches(list(self.markets))):
                self.watchers[f"*{number}"] = self._loop(lambda batch=batch: client.watch_tickers(batch))
            return
        if kind == "watchTradesForSymbols":
            # One request subscribes them all (a batch each, where the exchange takes fewer at once);
            # the calls per market below then send none (ccxt sends only missing subscriptions, and
            # these tasks run first: tasks start in order).
            for batch in self.feed.subscribe_batches(symbols):
                self._chore(self._once(client.watch_trades_for_symbols(batch)))
        for symbol in symbols:
            call = {"watchTradesForSymbols": lambda s=symbol: client.watch_trades_for_symbols([s]),
                    "watchTrades": lambda s=symbol: client.watch_trades(s),
                    "watchTicker": lambda s=symbol: client.watch_ticker(s)}[kind]
            self.watchers[symbol] = self._loop(call)

    async def _unwatch(self, client, market_ids: list[str]) -> None:
        """Unsubscribe where ccxt can (else the markets' trades are ignored until the next connection)."""
        has, method, many = UNWATCHES[self.kind]
        if not client.has.get(has):
            return
        try:
            for arg in self.feed.subscribe_batches(market_ids) if many else market_ids:
                await getattr(client, method)(arg)
        except Exception as exc:  # the connection's end cuts it short; nothing to undo
            log.debug("%s feed: unsubscribing %s: %s", self.feed.name, market_ids, exc)

    def _chore(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.chores.add(task)
        task.add_done_callback(self.chores.discard)

    # --- the connection ---------------------------------------------------------------------
    async def run(self) -> None:
        name = self.feed.name
        cls = await asyncio.to_thread(ccxt_client.pro_client_class, name)  # importing ccxt.pro takes a while
        self.kind = self.feed.watch_method(cls().has if cls is not None else {})
        if self.kind is None:
            if name not in _told:
                _told.add(name)
                log.warning("%s has no live feed in ccxt.pro: the REST poller serves it", name)
            self.owner.connection_down(f"{name} has no live feed in ccxt: polled")
            return
        attempt = 0
        while self.markets:
            self.stalled = False
            try:
                await self._connection()
                reason, detail = "closed", "the exchange closed the connection"
            except Exception as exc:
                import ccxt

                if not isinstance(exc, (ccxt.NetworkError, ConnectionError, OSError)):
                    log.warning("%s feed connection failed: %r", name, exc)
                reason, detail = type(exc).__name__, f"connection failed: {exc!s:.200}"
            finally:
                was_live, self.live = self.live, False
            if was_live and time.monotonic() - self.live_at > 10:
                attempt = 0  # healthy for a while: the back-off starts over
            if not self.markets:
                break
            if self.stalled:
                reason, detail = "silent", self.stall_detail
            metrics.FEED_RECONNECTS.labels(name, reason).inc()
            self.owner.connection_down(detail)
            attempt += 1
            delay = reconnect_delay(attempt, cap=settings.FEED_RECONNECT_MAX_SECONDS)
            log.warning("%s feed %s (%s); reconnecting in %.1fs", name, "lost" if was_live else "unavailable", detail, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> None:
        """One connection: subscribe, resync, read until it fails, stalls or has no market left."""
        adapter = get_exchange(self.feed.name)
        if not adapter.client.markets:  # the markets come with the REST listing (a thread: the seam blocks)
            await asyncio.to_thread(lambda: aio.run(adapter.listing(refresh=True)))
        client = ccxt_client.pro_client(self.feed.name, TRADES_KEPT)  # each answer: the market's recent trades
        if "ws" in client.urls.get("api", {}):
            client.urls["api"]["ws"] = self.feed.ws_urls(client.urls["api"]["ws"])
        client.set_markets(adapter.client.markets, adapter.client.currencies or None)
        self.ended = asyncio.get_running_loop().create_future()
        self.heard_ms, self.spoke = now_ms(), False
        self.client = client
        self._watch(list(self.markets))
        self.resync = asyncio.create_task(self.owner.resync(list(self.markets.values())))
        watchdog = asyncio.create_task(self._watchdog(client))
        try:
            await self.ended
        finally:
            self.client = None
            watchdog.cancel()
            for task in [*self.watchers.values(), *self.chores]:
                task.cancel()
            self.watchers.clear()
            closing = asyncio.ensure_future(client.close())
            try:
                await asyncio.wait_for(asyncio.shield(closing), CLOSE_SECONDS)
            except Exception as exc:
                log.debug("%s feed: closing the client: %r", self.feed.name, exc)

    def _end(self, error: BaseException | None = None) -> None:
        if self.ended is not None and not self.ended.done():
            (self.ended.set_exception(error) if error else self.ended.set_result(None))

    def _loop(self, call) -> asyncio.Task:
        async def loop():
            while True:
                await self._once(call())
        return asyncio.create_task(loop())

    async def _once(self, awaitable) -> None:
        """One watch call: its answer taken in, a refusal noted, a failure ending the connection."""
        import ccxt

        try:
            answer = await awaitable
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            self._end(ConnectionError("the connection was closed"))  # ccxt cancelled the wait: it closed
            await asyncio.Event().wait()  # until the connection's end cancels this
        except (ccxt.NetworkError, ConnectionError, OSError) as exc:
            self._end(exc)
            await asyncio.Event().wait()
        except ccxt.BaseError as exc:  # the exchange refused (an unknown market...): the rest goes on
            self.owner.detail = f"{exc!s:.200}"
            log.warning("%s feed refused a request: %s", self.feed.name, exc)
            await asyncio.sleep(self.owner.interval())
        else:
            self._take(answer)

    # --- what the feed says -----------------------------------------------------------------
    def _take(self, answer) -> None:
        received = now_ms()
        metrics.FEED_MESSAGES.labels(self.feed.name).inc()
        try:  # trades: a market's recent ones; tickers: {symbol: ticker}, or one
            items = answer if isinstance(answer, list) else [answer] if "symbol" in answer else list(answer.values())
            trades = self.feed.parse([t for t in items if self._new(t, received)], self.markets, received)
        except BAD_INPUT as exc:
            metrics.FEED_BAD_MESSAGES.labels(self.feed.name).inc()
            self.owner.bad_message(f"{exc!r:.120}")
            return
        self.heard_ms = self.owner.seen_ms = received
        self.spoke = True
        for trade in trades:
            self.owner.offer_trade(trade, received)
        self._check_live()

    def _new(self, item: dict, received: int) -> bool:
        """Whether a trade (or ticker) was not taken yet, by time and id: ccxt answers with a market's
        recent trades, and a ticker may come again unchanged."""
        stamp, key = int(item.get("timestamp") or received), item.get("id")
        newest, ids = self.taken.get(item["symbol"], (-1, set()))
        if stamp < newest or (stamp == newest and key in ids):
            return False
        self.taken[item["symbol"]] = (stamp, ids | {key}) if stamp == newest else (stamp, {key})
        return True

    def _check_live(self) -> None:
        if not self.live and self.spoke and self.resync is not None and self.resync.done():
            self.live, self.live_at = True, time.monotonic()
            self.owner.connection_live()

    # --- the watchdog -----------------------------------------------------------------------
    async def _watchdog(self, client) -> None:
        """Probe a quiet feed with ccxt's own ping; drop a silent one (connection.py's rule)."""
        probed = False
        while True:
            interval = self.owner.interval()
            await asyncio.sleep(min(0.5, interval / 4))
            heard = ccxt_client.last_heard_ms(client)
            if heard > self.heard_ms:  # any frame: a trade, an answer, a pong
                self.heard_ms = self.owner.seen_ms = heard
                self.spoke, probed = True, False
            self._check_live()
            quiet = (now_ms() - self.heard_ms) / 1000
            if quiet > 1.5 * interval:
                self.stalled, self.stall_detail = True, f"no message for {quiet:.1f}s"
                self._end()
                return
            if quiet > interval and not probed:
                probed = True
                for exc in await ccxt_client.ping(client):  # a connection this broken goes silent: dropped above
                    log.debug("%s feed: probe failed: %r", self.feed.name, exc)

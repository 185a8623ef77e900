"""Celery tasks: thin wrappers that take names, call a service, and hand new prices to the
broadcaster after the commit."""

import hashlib
import logging
import time

import orjson
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string

from core import keys, metrics

from . import markets, prices, selectors
from .candles import apply_tick_to_open_candles, sync_candles
from .depth import services as depth
from .domain.errors import MarketError
from .exchanges import ExchangeError
from .locks import Lease

log = logging.getLogger(__name__)


def broadcaster():
    return import_string(settings.MARKET_BROADCASTER)


def live_broadcaster():
    """The broadcaster's coroutine form, for a caller on an event loop (the ingest process)."""
    return import_string(settings.MARKET_LIVE_BROADCASTER)


def evaluate_alerts():
    """The price alerts' evaluator (market does not import alerts); it logs its own failures."""
    return import_string(settings.MARKET_ALERT_EVALUATOR)


@shared_task(ignore_result=True)
def dispatch_polls() -> list[str]:
    """Send poll_exchange for every exchange whose interval has elapsed (beat runs this every
    second). The due time is claimed in Redis, so a second beat could not double the polls."""
    now = selectors.now_ms()
    sent = []
    for source, (interval, enabled) in selectors.poll_schedule().items():
        if not enabled:
            continue
        slot = now // int(interval * 1000)
        if cache.add(keys.poll_slot(source, slot), 1, timeout=max(2, int(interval * 2))):
            poll_exchange.apply_async((source,), expires=interval * 2)
            sent.append(source)
    return sent


@shared_task(ignore_result=True)
def poll_exchange(source: str) -> int:
    with Lease(f"poll:{source}", selectors.poll_interval(source) * 3) as acquired:
        if not acquired:
            return 0
        now = selectors.now_ms()
        symbols = selectors.polled_symbols(source)
        if source in selectors.live_feeds():
            # The exchange's feed is live: the poller stands down, except for a market the feed has
            # said nothing about for two poll intervals (no trades, a refused subscription).
            symbols = selectors.stale_symbols(source, symbols, now)
            if not symbols:
                return 0
        started = time.perf_counter()
        try:
            ticks = prices.poll_quotes(source, symbols, now)
        except ExchangeError as exc:
            metrics.POLL_FAILURES.labels(source).inc()
            cache.set(keys.poll_error(source), str(exc), timeout=3600)
            log.warning("poll %s failed: %s", source, exc)
            return 0
        finally:
            metrics.POLL_SECONDS.labels(source).observe(time.perf_counter() - started)
        cache.delete(keys.poll_error(source))
        candles = apply_tick_to_open_candles(ticks)
        broadcaster()(ticks=ticks, candles=candles)
        evaluate_alerts()(ticks)
        return len(ticks)


CANDLE_LEASE_SECONDS = 30


@shared_task(bind=True, ignore_result=True, max_retries=20)
def sync_exchange_candles(self, source: str, full: bool = False) -> int:
    # One candle sync per exchange at a time (a full one makes the incremental ones skip), so
    # candle work never takes every worker thread away from the price polls.
    with Lease(f"candles:{source}", CANDLE_LEASE_SECONDS) as acquired:
        if not acquired:
            if full:  # a full sync (start-up backfill, gap repair) is not skipped, only delayed
                raise self.retry(countdown=CANDLE_LEASE_SECONDS)
            return 0
        symbols = selectors.tracked_symbols(source)
        written = sync_candles(source, symbols, selectors.now_ms(), full=full)
        updates = [(source, symbol, tf, max(cs, key=lambda c: c.open_time)) for (symbol, tf), cs in written.items() if cs]
        broadcaster()(ticks=[], candles=updates)
        return sum(len(c) for c in written.values())


@shared_task(ignore_result=True)
def poll_books() -> int:
    """Refresh the order books someone watches over the WebSocket and publish the changed ones
    (beat runs this every BOOK_INTERVAL seconds); books nobody watches are never fetched."""
    with Lease("books", settings.BOOK_INTERVAL * 3) as acquired:
        if not acquired:
            return 0
        changed = []
        for source, symbol in depth.watched():
            try:
                book = depth.order_book(source, symbol, depth.FETCH_DEPTH)
            except MarketError as exc:
                log.warning("book %s %s: %s", source, symbol, exc)
                continue
            fingerprint = hashlib.blake2b(orjson.dumps([book["bids"], book["asks"]]), digest_size=16).hexdigest()
            key = keys.book_last(source, symbol)
            if cache.get(key) != fingerprint:
                cache.set(key, fingerprint, timeout=600)
                changed.append(book)
        if changed:
            broadcaster()(books=changed)
        return len(changed)


@shared_task(ignore_result=True)
def prune_old_ticks() -> int:
    return prices.prune_ticks(settings.TICK_RETENTION_DAYS)


@shared_task(ignore_result=True)
def prune_untracked_markets() -> int:
    """Bound what strangers' requests for untracked markets leave stored (beat: hourly)."""
    return markets.prune_untracked()


@worker_ready.connect
def _backfill_on_start(sender, **kwargs) -> None:
    """Backfill and fill gaps as soon as a worker starts (after an outage too)."""
    for source in settings.EXCHANGES:
        sync_exchange_candles.delay(source, True)

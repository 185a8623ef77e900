"""Writes of prices (ticks): the one write path the poller, the live feeds and a live fetch share,
and the pruning of old ticks."""

from collections.abc import Iterable
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core import keys

from . import aio, documents, markets, partitions, selectors
from .domain.errors import NoData
from .domain.feeds import Trade
from .domain.prices import Quote, change_pct
from .exchanges import get_exchange
from .models import PriceTick
from .ticks import StoredTick, from_ms, to_ms


def _previous_ticks(source: str, symbols: list[str]) -> dict[str, tuple]:
    """(price, timestamp ms) of each market's newest stored tick: from the cache in one round
    trip (every write below refreshes it), from the database for what it lacks."""
    cached = cache.get_many([keys.latest(source, s) for s in symbols])
    out = {}
    for symbol in symbols:
        hit = cached.get(keys.latest(source, symbol))
        if hit is not None:
            tick = StoredTick.from_cache(hit)
            out[symbol] = (tick.price, tick.timestamp_ms)
            continue
        row = (
            PriceTick.objects.filter(source=source, symbol=symbol)
            .order_by("-timestamp")
            .values_list("price", "timestamp")
            .first()
        )
        if row is not None:
            out[symbol] = (row[0], to_ms(row[1]))
    return out


def _late_rows(source: str, late: list[Quote], polled_ms: int) -> list[PriceTick]:
    """Prices with the exchange's own time older than their market's newest stored one, each not
    stored yet: rows in their place in time, each change_pct from the price before it. This is
    rare (a feed's trade published at a handover while the poller stored its slot-stamped price
    first, or a batch that waited for the write lease), so a few indexed queries each."""
    rows: list[PriceTick] = []
    for quote in late:
        at = from_ms(quote.timestamp_ms)
        market = PriceTick.objects.filter(source=source, symbol=quote.symbol)
        mine = [r for r in rows if r.symbol == quote.symbol]  # this batch's, oldest first
        if any(r.timestamp == at for r in mine) or market.filter(timestamp=at).exists():
            continue  # already stored
        before = [*market.filter(timestamp__lt=at).order_by("-timestamp").values_list("timestamp", "price")[:1],
                  *((r.timestamp, r.price) for r in mine)]
        rows.append(
            PriceTick(
                source=source, symbol=quote.symbol, price=quote.price, timestamp=at, received_at=from_ms(polled_ms),
                change_pct=change_pct(max(before)[1] if before else None, quote.price),
            )
        )
    return rows


def record_quotes(source: str, quotes: Iterable[Quote], polled_ms: int) -> list[StoredTick]:
    """Store new prices, a market's in time order (a feed's batch may hold several); a price
    already stored (same market and time) is skipped, so a poll that runs twice stores nothing
    twice. A price older than the market's newest is stored in its place when the exchange gave
    its time (it happened; subscribers may have seen it), but not returned and not the latest; a
    poll's price without one (stamped with its time slot) is then skipped. Returns the ticks stored
    as the markets' newest, after the commit."""
    slot = int(selectors.poll_interval(source) * 1000) or 1
    slot_ms = polled_ms // slot * slot
    quotes = sorted(quotes, key=lambda q: q.timestamp_ms or slot_ms)  # a market's prices in time order
    previous = _previous_ticks(source, list(dict.fromkeys(q.symbol for q in quotes)))
    stored: list[StoredTick] = []
    rows, late = [], []
    for quote in quotes:
        stamp = quote.timestamp_ms or slot_ms
        prev = previous.get(quote.symbol)
        if prev is not None and prev[1] >= stamp:
            if quote.timestamp_ms and prev[1] > stamp:
                late.append(quote)
            continue  # already stored, or older than what we have (stored in its place below)
        pct = change_pct(prev[0] if prev else None, quote.price)
        previous[quote.symbol] = (quote.price, stamp)
        rows.append(
            PriceTick(
                source=source, symbol=quote.symbol, price=quote.price, timestamp=from_ms(stamp),
                received_at=from_ms(polled_ms), change_pct=pct,
            )
        )
        stored.append(StoredTick(source, quote.symbol, quote.price, stamp, polled_ms, pct))
    with transaction.atomic():
        if late:
            rows += _late_rows(source, late, polled_ms)
        # The unique (source, symbol, timestamp) constraint is the last guard against a duplicate.
        PriceTick.objects.bulk_create(rows, ignore_conflicts=True)
    if stored:
        newest = {keys.latest(t.source, t.symbol): t.to_cache() for t in stored}
        newest[keys.received(source)] = polled_ms  # /health's freshness, without a query
        cache.set_many(newest, timeout=None)
        documents.store_prices(stored)
    return stored


def poll_quotes(source: str, symbols: list[str], now_ms: int) -> list[StoredTick]:
    if not symbols:
        return []
    quotes = aio.run(get_exchange(source).fetch_quotes(symbols))
    return record_quotes(source, quotes, now_ms)


def record_feed_prices(source: str, trades: list[Trade], received_ms: int) -> list[StoredTick]:
    """Store the prices a live feed delivered, through the poller's own write (`record_quotes`: a
    price already stored is skipped; an older one than the newest is stored in its place). Returns
    the ticks stored as their markets' newest."""
    return record_quotes(source, [Quote(t.symbol, t.price, t.timestamp_ms) for t in trades], received_ms)


def fresh_or_live_tick(source: str, symbol: str) -> StoredTick:
    """The stored price when it is fresh; otherwise one fetched from the exchange now."""
    tick = selectors.latest_tick(source, symbol)
    if tick is not None and selectors.is_fresh(tick):
        return tick
    markets.ensure_listed(source, symbol)
    if not selectors.is_tracked(source, symbol):
        markets.admit_untracked(source, symbol)
    stored = poll_quotes(source, [symbol], selectors.now_ms())
    if stored:
        return stored[0]
    tick = selectors.latest_tick(source, symbol)
    if tick is None:
        raise NoData(f"No price available for {symbol} on {source}")
    return tick


def prune_ticks(days: int) -> int:
    """Forget ticks older than `days` (beat: hourly). On PostgreSQL's partitioned table, whole weeks
    are dropped and the partitions ahead made sure of (market.partitions); elsewhere a DELETE."""
    cutoff = timezone.now() - timedelta(days=days)
    if partitions.in_use():
        return partitions.prune(cutoff)
    deleted, _ = PriceTick.objects.filter(timestamp__lt=cutoff).delete()
    return deleted

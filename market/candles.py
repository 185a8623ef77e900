"""Writes of candles: the exchanges' own, upserted (by a sync, a live feed, a request for what is
not stored yet), and the open candles moved with each stored price."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from core import keys

from . import aio, documents, markets, selectors
from .domain.candles import Candle as CandleValue
from .domain.feeds import CandleUpdate
from .domain.sync import plan_ranges, sync_period_ms
from .domain.timeframes import TIMEFRAMES, align
from .exchanges import ExchangeError, get_exchange
from .models import Candle
from .ticks import StoredCandle, StoredTick

log = logging.getLogger(__name__)

CANDLE_FIELDS = ["open", "high", "low", "close", "volume", "closed", "updated_at"]


def upsert_candles(source: str, symbol: str, timeframe: str, candles: Iterable[CandleValue]) -> int:
    """Insert or update candles by (source, symbol, timeframe, open time): idempotent."""
    return upsert_series(source, {(symbol, timeframe): candles})


def upsert_series(source: str, series: dict[tuple[str, str], Iterable[CandleValue]]) -> int:
    """`upsert_candles` for several (symbol, timeframe) series of one exchange in one statement."""
    now = timezone.now()
    rows = [
        Candle(
            source=source, symbol=symbol, timeframe=timeframe, open_time=c.open_time, open=c.open, high=c.high,
            low=c.low, close=c.close, volume=c.volume, closed=c.closed, updated_at=now,
        )
        for (symbol, timeframe), candles in series.items()
        for c in candles
    ]
    if rows:
        Candle.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["source", "symbol", "timeframe", "open_time"],
            update_fields=CANDLE_FIELDS,
        )
        documents.candles_changed({(source, r.symbol, r.timeframe) for r in rows})
    return len(rows)


async def _fetch_plan(source: str, plan: list[tuple[str, str, list[tuple[int, int]]]], now_ms: int):
    exchange = get_exchange(source)
    results = []
    for symbol, timeframe, ranges in plan:
        for first, last in ranges:
            try:
                candles = await exchange.fetch_candles(symbol, timeframe, first, last, now_ms)
            except ExchangeError as exc:
                results.append((symbol, timeframe, exc))
                if exc.status in (503, 504):
                    return results  # the exchange is down or backing us off: stop this cycle
                continue
            results.append((symbol, timeframe, candles))
    return results


def sync_candles(source: str, symbols: list[str], now_ms: int, full: bool = False) -> dict[tuple[str, str], list[CandleValue]]:
    """Bring stored candles up to date with the exchange's own klines.

    Each series is refreshed from its newest stored candle on (covering outages), more often
    for short timeframes; `full` also fills holes anywhere in the backfill window. Returns
    the candles written, by (symbol, timeframe).
    """
    plan = []
    last_sync = cache.get_many([keys.candle_sync(source, s, tf) for s in symbols for tf in TIMEFRAMES])
    for symbol in symbols:
        for timeframe in TIMEFRAMES:
            key = keys.candle_sync(source, symbol, timeframe)
            if not full and now_ms - last_sync.get(key, 0) < sync_period_ms(timeframe, settings.CANDLE_SYNC_INTERVAL):
                continue
            last = selectors.last_open_time(source, symbol, timeframe)
            stored = None
            if full and last is not None:
                oldest = align(now_ms, timeframe) - (settings.BACKFILL_CANDLES - 1) * TIMEFRAMES[timeframe]
                stored = selectors.stored_open_times(source, symbol, timeframe, oldest, last)
            plan.append((symbol, timeframe, plan_ranges(timeframe, now_ms, settings.BACKFILL_CANDLES, last, stored)))
    if not plan:
        return {}
    results = aio.run(_fetch_plan(source, plan, now_ms))
    written: dict[tuple[str, str], list[CandleValue]] = {}
    synced = {}
    errors = []
    for symbol, timeframe, outcome in results:
        if isinstance(outcome, ExchangeError):
            errors.append(f"{symbol} {timeframe}: {outcome}")
            continue
        upsert_candles(source, symbol, timeframe, outcome)
        written.setdefault((symbol, timeframe), []).extend(outcome)
        synced[keys.candle_sync(source, symbol, timeframe)] = now_ms
    cache.set_many(synced, timeout=3600)
    if errors:
        log.warning("candle sync on %s: %d failures, first: %s", source, len(errors), errors[0])
    return written


def candles_for_request(
    source: str, symbol: str, timeframe: str, limit: int, start_ms: int | None, end_ms: int | None,
    now: int | None = None,
) -> list[StoredCandle]:
    """Stored candles for the window; what is missing (or still open though its period has
    ended) is fetched live from the exchange and stored first."""
    now = now or selectors.now_ms()
    first, last = selectors.candle_window(timeframe, limit, start_ms, end_ms, now)
    if first > last:
        return []
    tracked = selectors.is_tracked(source, symbol)
    if not tracked and first < (floor := markets.untracked_candle_floor(timeframe, now)):
        return _beyond_stored_depth(source, symbol, timeframe, first, last, floor, now)[-limit:]
    stored = selectors.candles(source, symbol, timeframe, first, last)
    size = TIMEFRAMES[timeframe]
    expected = (last - first) // size + 1
    needs_fetch = len(stored) < expected or any(
        not c.closed and c.open_time + size <= now for c in stored
    ) or (stored and not stored[-1].closed and _candle_is_stale(source, symbol, timeframe, stored[-1].open_time))
    # A partly stored range is refreshed at most once per poll interval (a hole may be real: no
    # trades); an empty one is always asked for, so an unknown symbol is a 404 every time.
    attempt_key = keys.candle_live(source, symbol, timeframe, first, last)
    if needs_fetch and (not stored or _first_attempt(attempt_key, max(5, int(selectors.poll_interval(source))))):
        if not stored:
            markets.ensure_listed(source, symbol)
        if not tracked:
            markets.admit_untracked(source, symbol)
        try:
            fetched = aio.run(get_exchange(source).fetch_candles(symbol, timeframe, first, last, now))
        except ExchangeError:
            if not stored:
                raise
            fetched = []  # serve what we have rather than fail a partly stored range
        upsert_candles(source, symbol, timeframe, fetched)
        stored = selectors.candles(source, symbol, timeframe, first, last)
    return stored[-limit:]


def _beyond_stored_depth(
    source: str, symbol: str, timeframe: str, first: int, last: int, floor: int, now: int
) -> list[StoredCandle]:
    """A window of an untracked market reaching back past the depth stored for it (`floor`): fetched
    from the exchange and served whole, as a tracked market's would be; only its candles from
    `floor` on are stored, so a stranger paging through years of history stores nothing of it."""
    markets.ensure_listed(source, symbol)
    if last >= floor:
        markets.admit_untracked(source, symbol)
    fetched = aio.run(get_exchange(source).fetch_candles(symbol, timeframe, first, last, now))
    older = [
        StoredCandle(c.open_time, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume), c.closed)
        for c in fetched
        if c.open_time < floor
    ]
    if last < floor:
        return older
    upsert_candles(source, symbol, timeframe, [c for c in fetched if c.open_time >= floor])
    return older + selectors.candles(source, symbol, timeframe, floor, last)


def _first_attempt(key: str, seconds: int) -> bool:
    """Whether this is the first try at a live fetch in the period; while Redis is down, no: what
    is stored is served rather than the exchange asked on every request."""
    try:
        return cache.add(key, 1, timeout=seconds)
    except RedisError:
        return False


def _candle_is_stale(source: str, symbol: str, timeframe: str, open_time: int) -> bool:
    row = Candle.objects.filter(source=source, symbol=symbol, timeframe=timeframe, open_time=open_time).values_list(
        "updated_at", flat=True
    ).first()
    if row is None:
        return True
    age = (timezone.now() - row).total_seconds()
    return age > max(2 * settings.CANDLE_SYNC_INTERVAL, sync_period_ms(timeframe, settings.CANDLE_SYNC_INTERVAL) / 1000)


def apply_tick_to_open_candles(
    ticks: Iterable[StoredTick], timeframes: Iterable[str] = tuple(TIMEFRAMES)
) -> list[tuple[str, str, str, CandleValue]]:
    """Move each market's open candles (of these timeframes) with its newest price (high, low,
    close), so charts move between candle syncs; the next sync overwrites them with the exchange's
    own. One read and one write for all the ticks (of one exchange, as every caller has them)."""
    timeframes = tuple(timeframes)
    moves: dict[tuple[str, str, str, int], list] = {}  # candle -> [high, low, newest time, its price]
    for tick in ticks if timeframes else ():
        for tf in timeframes:
            key = (tick.source, tick.symbol, tf, align(tick.timestamp_ms, tf))
            move = moves.get(key)
            if move is None:
                moves[key] = [tick.price, tick.price, tick.timestamp_ms, tick.price]
                continue
            move[0], move[1] = max(move[0], tick.price), min(move[1], tick.price)
            if tick.timestamp_ms > move[2]:
                move[2], move[3] = tick.timestamp_ms, tick.price
    if not moves:
        return []
    rows = [
        r
        for r in Candle.objects.filter(
            source__in={k[0] for k in moves}, symbol__in={k[1] for k in moves}, timeframe__in=timeframes,
            closed=False, open_time__in={k[3] for k in moves},
        )
        if (r.source, r.symbol, r.timeframe, r.open_time) in moves
    ]
    changed = []
    now = timezone.now()
    for row in rows:
        high, low, _at, close = moves[(row.source, row.symbol, row.timeframe, row.open_time)]
        row.high = max(row.high, high)
        row.low = min(row.low, low)
        row.close = close
        row.updated_at = now
        changed.append(
            (row.source, row.symbol, row.timeframe,
             CandleValue(row.open_time, row.open, row.high, row.low, row.close, row.volume, False))
        )
    if rows:
        _update_moved(rows)
    documents.candles_changed((source, symbol, timeframe) for source, symbol, timeframe, _candle in changed)
    return changed


MOVED_FIELDS = ("high", "low", "close", "updated_at")


def _update_moved(rows: list[Candle]) -> None:
    """Write the moved candles' high, low, close and time: one UPDATE by primary key, executed for
    every row in one call. Django's bulk_update builds a CASE of every row for every field, which
    cost 240 ms of CPU for the 480 open candles of 60 markets (the read and this write: 18 ms)."""
    connection = connections[router.db_for_write(Candle)]
    fields = [Candle._meta.get_field(name) for name in MOVED_FIELDS]
    quote = connection.ops.quote_name
    sql = (f"UPDATE {quote(Candle._meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
           f"WHERE {quote(Candle._meta.pk.column)} = %s")
    params = [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] + [row.pk] for row in rows]
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def record_feed_candles(
    source: str, ticks: list[StoredTick], candles: list[CandleUpdate], moved_timeframes: Iterable[str]
) -> list[tuple[str, str, str, CandleValue]]:
    """Store the exchange's own candles a live feed delivered (`upsert_series`), and move the open
    candles of the timeframes the feed does not carry with the prices just stored; in one
    transaction. Returns the candles changed, oldest first per series, for the broadcaster."""
    series: dict[tuple[str, str], dict[int, CandleValue]] = {}
    for update in candles:
        series.setdefault((update.symbol, update.timeframe), {})[update.candle.open_time] = update.candle
    ordered = {key: [by_time[t] for t in sorted(by_time)] for key, by_time in series.items()}
    with transaction.atomic():
        upsert_series(source, ordered)
        moved = apply_tick_to_open_candles(ticks, moved_timeframes)
    changed = [(source, symbol, timeframe, c) for (symbol, timeframe), rows in ordered.items() for c in rows]
    return changed + moved


def fetch_open_candles(source: str, symbols: list[str], timeframes: Iterable[str], now_ms: int) -> list:
    """The open candle of these timeframes for these markets, from the REST API (a feed resync):
    [(symbol, timeframe, candles)]; an exchange that is down or backing us off ends the round."""

    async def fetch():
        exchange, out = get_exchange(source), []
        for symbol in symbols:
            for timeframe in timeframes:
                start = align(now_ms, timeframe)
                try:
                    out.append((symbol, timeframe, await exchange.fetch_candles(symbol, timeframe, start, now_ms, now_ms)))
                except ExchangeError as exc:
                    log.warning("open candle refresh %s %s %s: %s", source, symbol, timeframe, exc)
                    if exc.status in (503, 504):
                        return out
        return out

    return aio.run(fetch())


def store_candles(source: str, fetched: list) -> list[tuple[str, str, str, CandleValue]]:
    changed = []
    for symbol, timeframe, candles in fetched:
        upsert_candles(source, symbol, timeframe, candles)
        changed.extend((source, symbol, timeframe, c) for c in candles)
    return changed

"""Reads of stored market data. No exchange calls here (market.prices, market.candles and market.markets write)."""

import time
from collections.abc import Iterator
from itertools import chain

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import FloatField, Max
from django.db.models.functions import Cast
from django.utils import timezone
from redis.exceptions import RedisError

from core import keys

from . import locks
from .domain.feeds import feed_is_live
from .domain.timeframes import TIMEFRAMES, align
from .exchanges import describe, min_poll_interval
from .models import Candle, ExchangeSchedule, OnDemandMarket, PriceTick, TrackedMarket
from .ticks import StoredCandle, StoredTick, from_ms, to_ms


def now_ms() -> int:
    return int(time.time() * 1000)


class _Recent:
    """A value loaded at most every two seconds in this process: read on every request, so an
    admin edit applies everywhere within two seconds without a restart or a cache round trip."""

    SECONDS = 2.0

    def __init__(self, load):
        self.load = load
        self.forget()

    def get(self):
        now = time.monotonic()
        if now - self.at > self.SECONDS:
            self.value, self.at = self.load(), now
        return self.value

    def forget(self) -> None:
        self.value, self.at = None, float("-inf")


def _load_schedule() -> dict[str, tuple[float, bool]]:
    rows = {r.source: (r.poll_interval, r.enabled) for r in ExchangeSchedule.objects.all()}
    return {src: rows.get(src, (default_poll_interval(src), True)) for src in settings.EXCHANGES}


def default_poll_interval(source: str) -> float:
    """POLL_INTERVAL, or the source's own floor where its budget needs a longer one (CoinGecko)."""
    return max(settings.POLL_INTERVAL, min_poll_interval(source))


_schedule = _Recent(_load_schedule)
_tracked = _Recent(lambda: frozenset(TrackedMarket.objects.values_list("source", "symbol")))


def poll_schedule() -> dict[str, tuple[float, bool]]:
    """(interval in seconds, enabled) per configured exchange: the admin's ExchangeSchedule
    rows, else POLL_INTERVAL (or the source's longer floor)."""
    return _schedule.get()


def forget_poll_schedule() -> None:
    """Drop this process's copies of the schedule and the tracked set (tests, admin edits)."""
    _schedule.forget()
    _tracked.forget()


def poll_interval(source: str) -> float:
    return poll_schedule().get(source, (default_poll_interval(source), True))[0]


def stale_after_ms(source: str | None = None) -> int:
    """A price is stale when it is older than three poll intervals of its exchange."""
    interval = poll_interval(source) if source else settings.POLL_INTERVAL
    return int(3 * interval * 1000)


def is_fresh(tick: StoredTick, now: int | None = None) -> bool:
    return (now or now_ms()) - tick.received_ms <= stale_after_ms(tick.source)


def tracked_symbols(source: str) -> list[str]:
    return list(TrackedMarket.objects.filter(source=source, enabled=True).values_list("symbol", flat=True))


def is_tracked(source: str, symbol: str) -> bool:
    """Whether a market is tracked (every WebSocket subscription and live lookup asks)."""
    return (source, symbol) in _tracked.get()


def polled_symbols(source: str) -> list[str]:
    """Tracked symbols plus untracked ones that live WebSocket subscribers asked for."""
    tracked = tracked_symbols(source)
    extra = OnDemandMarket.objects.filter(source=source, expires_at__gt=timezone.now()).values_list("symbol", flat=True)
    return list(dict.fromkeys([*tracked, *extra]))


def tracked_by_source() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {source: [] for source in settings.EXCHANGES}
    for source, symbol in TrackedMarket.objects.filter(enabled=True, source__in=settings.EXCHANGES).values_list(
        "source", "symbol"
    ):
        out[source].append(symbol)
    return out


class _Unavailable(dict):
    """What a cache read returns while Redis is down: nothing (the database answers instead)."""


def _cache_get_many(names: list[str]) -> dict:
    try:
        return cache.get_many(names)
    except RedisError:
        return _Unavailable()


def latest_tick(source: str, symbol: str) -> StoredTick | None:
    """The newest stored price: from the cache (no query) when it is there, else from the
    database (also while Redis is down)."""
    key = keys.latest(source, symbol)
    cached = _cache_get_many([key])
    if key in cached:
        return StoredTick.from_cache(cached[key])
    row = PriceTick.objects.filter(source=source, symbol=symbol).order_by("-timestamp").first()
    if row is None:
        return None
    tick = StoredTick.from_model(row)
    if not isinstance(cached, _Unavailable):
        cache.set(key, tick.to_cache(), timeout=None)
    return tick


def latest_ticks(markets: dict[str, list[str]]) -> list[StoredTick]:
    names = {keys.latest(src, sym): (src, sym) for src, syms in markets.items() for sym in syms}
    cached = _cache_get_many(list(names))
    out = []
    for key, (src, sym) in names.items():
        tick = StoredTick.from_cache(cached[key]) if key in cached else latest_tick(src, sym)
        if tick is not None:
            out.append(tick)
    return out


def history(source: str, symbol: str, limit: int) -> list[StoredTick]:
    rows = PriceTick.objects.filter(source=source, symbol=symbol).order_by("-timestamp")[:limit]
    return [StoredTick.from_model(r) for r in rows]


def price_points(source: str, symbol: str, since_ms: int, points: int = 120) -> Iterator[tuple[int, float]]:
    """(timestamp ms, price) of the newest stored price at or before `since_ms`, then of the ones
    after it, oldest first: what a price alert over a window starts from. A window holding more
    than `points` x 16 prices (a day of ticks is 86,400) is read as `points` evenly spaced ones
    (the newest at or before each step, one indexed read each), never row by row."""
    ticks = PriceTick.objects.filter(source=source, symbol=symbol)
    at = from_ms(since_ms)
    before = ticks.filter(timestamp__lte=at).order_by("-timestamp").values_list("timestamp", "price")[:1]
    recent = ticks.filter(timestamp__gt=at)
    if recent.count() <= points * 16:
        rows = chain(before, recent.order_by("timestamp").values_list("timestamp", "price"))
    else:
        step = max(1, (now_ms() - since_ms) // points)
        rows = chain(before, (row for i in range(1, points + 1) for row in ticks.filter(
            timestamp__gt=at, timestamp__lte=from_ms(since_ms + i * step)).order_by("-timestamp").values_list(
            "timestamp", "price")[:1]))
    last = None
    for moment, price in rows:
        if moment != last:  # a sparse stretch gives the same price for several steps
            last = moment
            yield to_ms(moment), float(price)


def feed_states() -> dict[str, dict]:
    """The ingest process's word on each configured exchange's feed (empty while Redis is down)."""
    cached = _cache_get_many([keys.feed(source) for source in settings.EXCHANGES])
    return {source: cached.get(keys.feed(source)) or {} for source in settings.EXCHANGES}


def feed_path(source: str, state: dict, now: int | None = None) -> dict:
    """Which path brings an exchange's prices now ("feed" or "poll") and since when (epoch ms;
    None when the feed has never been live)."""
    now = now or now_ms()
    interval = poll_interval(source)
    live = feed_is_live(state.get("live_since"), state.get("seen"), now, interval)
    if live:
        return {"path": "feed", "since": state["live_since"], "detail": ""}
    since = state.get("down_since")
    if since is None and state.get("live_since") and state.get("seen"):
        since = state["seen"] + int(2 * interval * 1000)  # the ingest process went silent
    return {"path": "poll", "since": since, "detail": state.get("detail", "")}


def holders() -> dict:
    """Who holds each exchange's feed and the scheduler now (their INSTANCE_NAME, or None):
    {"feeds": {exchange: name}, "scheduler": name}; empty names while Redis is away."""
    names = [keys.feed_holding(source) for source in settings.EXCHANGES]
    try:
        held = locks.holders([*names, keys.SCHEDULER_HOLDING])
    except RedisError:
        held = {}
    return {"feeds": {source: held.get(name) for source, name in zip(settings.EXCHANGES, names)},
            "scheduler": held.get(keys.SCHEDULER_HOLDING)}


def live_feeds() -> set[str]:
    """The exchanges whose feed is the live path now: the poller stands down for them."""
    now = now_ms()
    return {source for source, state in feed_states().items() if feed_path(source, state, now)["path"] == "feed"}


def stale_symbols(source: str, symbols: list[str], now: int | None = None) -> list[str]:
    """Those of `symbols` with no stored price received within two poll intervals: a market the
    feed has gone quiet on (no trades, a refused subscription) is polled while the feed is live."""
    now = now or now_ms()
    limit = int(2 * poll_interval(source) * 1000)
    cached = _cache_get_many([keys.latest(source, s) for s in symbols])
    out = []
    for symbol in symbols:
        hit = cached.get(keys.latest(source, symbol))
        if hit is None or now - int(hit["received_ms"]) > limit:
            out.append(symbol)
    return out


def _newest_received_ms(source: str, remember: bool) -> int | None:
    """The database's word on keys.received, for an exchange Redis knows nothing of (flushed,
    restarted, or down): one lookup in the (source, received_at) index."""
    newest = PriceTick.objects.filter(source=source).aggregate(m=Max("received_at"))["m"]
    if newest is None:
        return None
    received = to_ms(newest)
    if remember:
        try:
            cache.add(keys.received(source), received, timeout=None)  # never over a newer batch's
        except RedisError:
            pass
    return received


def source_freshness() -> dict[str, dict]:
    """Per configured exchange: the newest tick's age and whether it is stale. Read from Redis in
    one round trip; the database is asked only for an exchange Redis has no word on."""
    now = now_ms()
    cached = _cache_get_many([name for source in settings.EXCHANGES
                              for name in (keys.received(source), keys.feed(source), keys.poll_error(source))])
    out = {}
    for source in settings.EXCHANGES:
        path = feed_path(source, cached.get(keys.feed(source)) or {}, now)
        received = cached.get(keys.received(source))
        if received is None:
            received = _newest_received_ms(source, remember=not isinstance(cached, _Unavailable))
        age = None if received is None else round((now - received) / 1000, 3)
        out[source] = {
            "last_tick_utc": None if received is None else from_ms(received).isoformat(),
            "age_seconds": age,
            "stale": age is None or age * 1000 > stale_after_ms(source),
            "last_error": cached.get(keys.poll_error(source)),
            # Which path brings this exchange's prices: its live feed, or the REST poller standing in.
            "path": path["path"],
            "path_since_utc": None if path["since"] is None else from_ms(path["since"]).isoformat(),
            "feed_detail": path["detail"] or None,
            **describe(source),
        }
    return out


def last_open_time(source: str, symbol: str, timeframe: str) -> int | None:
    return Candle.objects.filter(source=source, symbol=symbol, timeframe=timeframe).aggregate(m=Max("open_time"))["m"]


def stored_open_times(source: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[int]:
    return list(
        Candle.objects.filter(
            source=source, symbol=symbol, timeframe=timeframe, open_time__gte=start_ms, open_time__lte=end_ms
        )
        .order_by("open_time")
        .values_list("open_time", flat=True)
    )


def candle_window(timeframe: str, limit: int, start_ms: int | None, end_ms: int | None, now: int) -> tuple[int, int]:
    """The [first, last] open times a candle request covers."""
    size = TIMEFRAMES[timeframe]
    newest = align(now, timeframe)
    if start_ms is not None:
        first = align(start_ms, timeframe)
        if first < start_ms:
            first += size
        last = min(newest, align(end_ms, timeframe) if end_ms is not None else newest, first + (limit - 1) * size)
    else:
        last = min(newest, align(end_ms, timeframe) if end_ms is not None else newest)
        first = last - (limit - 1) * size
    return first, last


_PRICE_FIELDS = ("open", "high", "low", "close", "volume")


def candles(source: str, symbol: str, timeframe: str, first: int, last: int) -> list[StoredCandle]:
    """Stored candles with open times in [first, last], oldest first. The database casts the prices
    to floats and the rows are read straight from the cursor: a thousand candles in about a
    millisecond, where model instances or values_list with a Decimal per value take ten."""
    query = (
        Candle.objects.filter(source=source, symbol=symbol, timeframe=timeframe, open_time__gte=first, open_time__lte=last)
        .order_by("open_time")
        .values_list("open_time", *(Cast(name, FloatField()) for name in _PRICE_FIELDS), "closed")
        .query
    )
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(map(StoredCandle._make, cursor.fetchall()))


"""Order books fetched from the exchanges (each market's book cached for a second, so that many
readers cost one call), consolidated for `composite`, and the list of books someone watches over
the WebSocket (only those are refreshed by the market.tasks.poll_books task)."""

import asyncio
import time
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from core import keys
from core.cache import redis_client

from .. import aio
from ..domain.errors import MarketError
from ..exchanges import get_exchange, venues
from ..markets import ensure_listed
from .book import Book, composite, depth_bands, spread_and_mid

FETCH_DEPTH = 100  # levels a side fetched (and cached) per market; answers are cut to what is asked
CACHE_SECONDS = 1
WATCH_SECONDS = 120


def _cached(source: str, symbol: str) -> Book | None:
    try:
        hit = cache.get(keys.book(source, symbol))
    except RedisError:
        return None
    if hit is None:
        return None
    return Book(hit["source"], hit["symbol"], tuple(map(tuple, hit["bids"])), tuple(map(tuple, hit["asks"])),
                hit["timestamp_ms"])


def books(sources: list[str], symbol: str) -> list[Book | MarketError]:
    """Each exchange's book (from the cache, else fetched, the exchanges asked at once)."""
    found: dict[str, Book | MarketError] = {}
    missing = []
    for source in sources:
        book = _cached(source, symbol)
        if book is None:
            missing.append(source)
        else:
            found[source] = book
    for source in missing:
        try:
            ensure_listed(source, symbol)
        except MarketError as exc:
            found[source] = exc
    missing = [s for s in missing if s not in found]

    async def fetch_all():
        now = int(time.time() * 1000)
        return await asyncio.gather(*(get_exchange(s).fetch_book(symbol, FETCH_DEPTH, now) for s in missing),
                                    return_exceptions=True)

    for source, result in zip(missing, aio.run(fetch_all()) if missing else []):
        if isinstance(result, MarketError):
            found[source] = result
        elif isinstance(result, BaseException):
            raise result
        else:
            found[source] = result
            try:
                cache.set(keys.book(source, symbol), asdict(result), timeout=CACHE_SECONDS)
            except RedisError:
                pass
    return [found[s] for s in sources]


def _number(value) -> float | None:
    return None if value is None else float(value)


def order_book(source: str, symbol: str, depth: int) -> dict:
    """The `/api/market/orderbook` answer (and the WebSocket `book` message's data)."""
    if source != "composite":
        (book,) = books([source], symbol)
        if isinstance(book, MarketError):
            raise book
        spread, mid = spread_and_mid(book.bids, book.asks)
        return {"symbol": symbol, "source": source, "depth": depth, "timestamp": book.timestamp_ms,
                "bids": [list(level) for level in book.bids[:depth]], "asks": [list(level) for level in book.asks[:depth]],
                "spread": _number(spread), "mid": _number(mid),
                "depth_within_pct": depth_bands(book.bids, book.asks,
                                                (len(book.bids) < FETCH_DEPTH, len(book.asks) < FETCH_DEPTH))}
    results = books(venues(settings.EXCHANGES), symbol)
    good = [b for b in results if isinstance(b, Book)]
    if not good:
        raise next(r for r in results if isinstance(r, MarketError))
    merged = composite(good, depth, FETCH_DEPTH)
    spread, mid = spread_and_mid(merged["bids"], merged["asks"])
    return {"symbol": symbol, "source": "composite", "depth": depth, "timestamp": max(b.timestamp_ms for b in good),
            "sources": sorted(b.source for b in good), "bids": merged["bids"], "asks": merged["asks"],
            "spread": _number(spread), "mid": _number(mid),
            "depth_within_pct": depth_bands(merged["all_bids"], merged["all_asks"], merged["complete"])}


# --- watched books ------------------------------------------------------------------------------
def watch(source: str, symbol: str) -> None:
    """A WebSocket subscriber watches this book (for the next two minutes; its connection renews it
    every minute, so a watch missed while Redis is down is made again within a minute of its return)."""
    try:
        redis_client().zadd(keys.book_watch_key(), {f"{source}:{symbol}": time.time() + WATCH_SECONDS})
    except RedisError:
        pass


def watched() -> list[tuple[str, str]]:
    """The books someone watches now."""
    client, key = redis_client(), keys.book_watch_key()
    client.zremrangebyscore(key, "-inf", time.time())
    return [tuple(member.decode().split(":", 1)) for member in client.zrange(key, 0, -1)]

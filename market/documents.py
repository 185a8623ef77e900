"""The hot reads' answers, rendered once when their data changes and kept in Redis as the exact
bytes to send: `/api/market/price` for a fresh price, `/prices`, `/coins` and `/api/market/ohlc`.

The ASGI edge (cryptosite.edge) answers these requests from Redis in the same round trip as the
rate limit. Without a document (not rendered yet, forgotten, or a price that went stale: its
document expires with its freshness) the request goes on to the view, which answers with the
same bytes and, for /prices and /coins, stores them for the next request.
"""

import orjson
from django.db import transaction
from redis.exceptions import RedisError

from core import keys
from core.cache import redis_client

from . import selectors
from .payloads import coins_payload, price_payload, prices_payload
from .ticks import StoredTick

# /prices and /coins follow the tracked set: re-rendered after every poll, forgotten when the
# admin edits it, and never kept longer than this either way.
TRACKED_TTL_SECONDS = 60


def price_key(source: str, symbol: str) -> str:
    return keys.document_key("price", source, symbol)


def prices_key() -> str:
    return keys.document_key("prices")


def coins_key() -> str:
    return keys.document_key("coins")


def candles_version_key(source: str, symbol: str, timeframe: str) -> str:
    return keys.document_key("candles-version", source, symbol, timeframe)


def ohlc_key(source: str, symbol: str, timeframe: str, first: int, last: int, limit: int) -> str:
    """The document of a candles request, less its version: the stored candles' version of that
    series (candles_version_key) is appended when it is read or written."""
    return keys.document_key("ohlc", source, symbol, timeframe, first, last, limit)


def render(payload: object) -> bytes:
    return orjson.dumps(payload)


def price_body(tick: StoredTick, now_ms: int | None = None) -> dict:
    """`/api/market/price` for one exchange: the price and whether it is stale."""
    return {**price_payload(tick), "stale": not selectors.is_fresh(tick, now_ms)}


# A price document is replaced only by one of the same or a newer trade time (its time lives
# beside it, for as long as it does): whoever writes last, the price served never goes back.
# KEYS: the document, its time; ARGV: the time (ms), the document, its lifetime (ms).
_SET_IF_NEWER = """
local held = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[1]) < held then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1
"""


def _set_price_documents(pipe, ticks: list[StoredTick], now: int) -> None:
    """Each price's document, living exactly as long as the price is fresh."""
    for tick in ticks:
        fresh_for = tick.received_ms + selectors.stale_after_ms(tick.source) - now
        if fresh_for > 0:
            key = price_key(tick.source, tick.symbol)
            pipe.eval(_SET_IF_NEWER, 2, key, f"{key}:time", tick.timestamp_ms, render(price_body(tick, now)), fresh_for)


def store_prices(ticks: list[StoredTick]) -> None:
    """After new prices are stored: each one's document, and /prices again."""
    now = selectors.now_ms()
    pipe = redis_client().pipeline(transaction=False)
    _set_price_documents(pipe, ticks, now)
    pipe.set(prices_key(), _render_prices(), ex=TRACKED_TTL_SECONDS)
    pipe.execute()


def serve_live(ticks: list[StoredTick]) -> None:
    """A live feed's newest trades, served by `/api/market/price` as they arrive, while storage
    (and with it the stream, /prices and the history) takes one per TICK_MIN_INTERVAL."""
    pipe = redis_client().pipeline(transaction=False)
    _set_price_documents(pipe, ticks, selectors.now_ms())
    pipe.execute()


def _render_prices() -> bytes:
    markets = selectors.tracked_by_source()
    return render(prices_payload(markets, selectors.latest_ticks(markets)))


def _cached(key: str, build) -> bytes:
    """The stored document, or one rendered now and stored unless a fresher one got there first
    (while Redis is down: rendered, not stored)."""
    client = redis_client()
    try:
        body = client.get(key)
    except RedisError:
        return build()
    if body is None:
        body = build()
        client.set(key, body, ex=TRACKED_TTL_SECONDS, nx=True)
    return body


def prices() -> bytes:
    return _cached(prices_key(), _render_prices)


def coins() -> bytes:
    return _cached(coins_key(), lambda: render(coins_payload(selectors.tracked_by_source())))


def forget_tracked() -> None:
    """The tracked set changed: /prices and /coins are rendered again on their next request."""
    redis_client().delete(prices_key(), coins_key())


def ohlc(q: dict, build, variant: str = "") -> bytes:
    """A candles request's answer: the document for the series' current version, or build(now)'s
    payload rendered and stored under the version read before building (a write during the build
    moves the version on, so what was built from older candles is never served after it). It lives
    one poll interval at most, the period in which a request would not try the exchange again."""
    now = selectors.now_ms()
    first, last = selectors.candle_window(q["timeframe"], q["limit"], q["start"], q["end"], now)
    client = redis_client()
    try:
        version = client.get(candles_version_key(q["source"], q["symbol"], q["timeframe"])) or b"0"
    except RedisError:
        return render(build(now))  # Redis is down: rendered, not stored
    key = f"{ohlc_key(q['source'], q['symbol'], q['timeframe'], first, last, q['limit'])}:{version.decode()}"
    if variant:  # another answer computed from the same candles (indicators): stored beside it
        key = f"{key}:{variant}"
    body = client.get(key)
    if body is None:
        body = render(build(now))
        client.set(key, body, ex=max(1, int(selectors.poll_interval(q["source"]))))
    return body


def candles_changed(series) -> None:
    """Stored candles of these (source, symbol, timeframe) series changed: their documents are
    superseded once the change is committed."""
    series = set(series)
    if not series:
        return

    def bump() -> None:
        pipe = redis_client().pipeline(transaction=False)
        for source, symbol, timeframe in series:
            pipe.incr(candles_version_key(source, symbol, timeframe))
        pipe.execute()

    transaction.on_commit(bump)

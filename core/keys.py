"""Every key cryptosite keeps in Redis, named in one place.

Two kinds, as two ways of reaching Redis:

- **Cache names** go through Django's cache API (`cache.get(name)`), which adds its own
  `<KEY_PREFIX>:<version>:` in front. The functions below that return one end in nothing special.
- **Redis keys** are used as they are by redis-py (scripts, sorted sets, locks, the documents the
  ASGI edge reads without Django). They start with the deployment's `KEY_PREFIX` (so a demo and a
  production stack can share one Redis), and their functions end in `_key`.

Elsewhere in the same Redis, and named by their libraries from settings: Celery's broker
(`CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]`) and the channel layer's groups and inboxes
(`CHANNEL_LAYERS`; the group names are streaming.groups').

A key's shape is part of a running deployment: processes of two versions share a Redis during a
rolling restart, so a change here is a change to what they agree on.
"""

from functools import lru_cache

from django.conf import settings


def prefix() -> str:
    """The deployment's prefix: every Redis key starts with it."""
    return settings.CACHES["default"].get("KEY_PREFIX", "")


def cache_key(name: str) -> str:
    """The Redis key the cache API keeps `name` under, for redis-py calls on a cache entry."""
    from django.core.cache import cache

    return cache.make_key(name)


# --- prices, feeds and polls (cache names) -----------------------------------------------------

def latest(source: str, symbol: str) -> str:
    """The newest price of a market (market.ticks)."""
    return f"latest:{source}:{symbol}"


def feed(source: str) -> str:
    """The state of an exchange's live feed: the ingest process writes it, /health reads it."""
    return f"feed:{source}"


def received(source: str) -> str:
    """When the newest stored price of an exchange was received (epoch ms), written with every
    stored batch so that /health reads it instead of querying the ticks."""
    return f"received:{source}"


def poll_error(source: str) -> str:
    """The last poll failure of an exchange, while it lasts (market.tasks writes, selectors read)."""
    return f"poll-error:{source}"


def poll_slot(source: str, slot: int) -> str:
    """Taken by the first of the beat's duplicate sends of one poll interval."""
    return f"poll-slot:{source}:{slot}"


def candle_sync(source: str, symbol: str, timeframe: str) -> str:
    """When a market's candles of a timeframe were last synced from the exchange."""
    return f"candle-sync:{source}:{symbol}:{timeframe}"


def candle_live(source: str, symbol: str, timeframe: str, first: int, last: int) -> str:
    """Taken by the first request that fetches a range of candles live (the others wait for it)."""
    return f"candle-live:{source}:{symbol}:{timeframe}:{first}:{last}"


def exchange_backoff(exchange: str) -> str:
    """Until when every process leaves an exchange alone after it asked us to slow down."""
    return f"exchange-backoff:{exchange}"


# --- order books (cache names, and one Redis key) -----------------------------------------------

def book(source: str, symbol: str) -> str:
    """A fetched order book, for the seconds it is fresh."""
    return f"book:{source}:{symbol}"


def book_last(source: str, symbol: str) -> str:
    """The fingerprint of the last book published to subscribers (unchanged books are not sent)."""
    return f"book-last:{source}:{symbol}"


def book_watch_key() -> str:
    """Sorted set of the books someone watches (`source:symbol`), scored by when the watch lapses."""
    return cache_key("book-watch")


# --- health ---------------------------------------------------------------------------------------

HEALTH_CHECKS = "health:checks"  # the dependency checks, shared by every process for a second


# --- documents the ASGI edge serves (Redis keys) ---------------------------------------------------

def document_key(*parts: object) -> str:
    """A rendered response body (market.documents): `price`, `prices`, `coins`, `ohlc`, and the
    candles' version that ohlc documents are kept under."""
    return ":".join((prefix(), "doc", *map(str, parts)))


# --- locks, rate limits and connections (Redis keys) ------------------------------------------------

def lock_key(name: str) -> str:
    """A lease (market.locks): polls, candle syncs and feed writes of one exchange."""
    return cache_key(f"lock:{name}")


def feed_holding(source: str) -> str:
    """The lease on an exchange's live feed: one ingest process holds it (market.locks.Holding)."""
    return f"feed-holder:{source}"


SCHEDULER_HOLDING = "scheduler"  # the lease of the one Celery beat that sends (cryptosite.beat)


def ingest_candidates_key() -> str:
    """The ingest processes alive, each until its presence lapses (a sorted set: name -> epoch ms)."""
    return f"{prefix()}:ingest-candidates"


def rate_counter_key(group: str, limit: int, period: int, client: str, end: int) -> str:
    """A client's requests in one rate-limit window, which ends at `end`."""
    return f"{prefix()}:rl:{group}:{limit}/{period}:{client}:{end}"


def ws_connections_key(client: str) -> str:
    """Sorted set of an address's open WebSocket connections, scored by when each lease lapses."""
    return f"{prefix()}:ws:conns:{client}"


# --- API keys and alerts (Redis keys) ---------------------------------------------------------------

def api_keys_version_key() -> str:
    """Changed by every create, edit, revoke and delete of an API key."""
    return f"{prefix()}:apikey:version"


def api_key_day_key(key_prefix: str, on: str) -> str:
    """A key's requests on one day (`on`: YYYY-MM-DD)."""
    return f"{prefix()}:apikey:used:{key_prefix}:{on}"


def api_keys_last_used_key() -> str:
    """Hash of each key's last use."""
    return f"{prefix()}:apikey:last-used"


@lru_cache(maxsize=4096)
def alerts_version_key(source: str, symbol: str) -> str:
    """Changed whenever a market's alerts change, so every process reloads them."""
    return cache_key(f"alerts-version:{source}:{symbol}")

"""What the ingest process tells every other process about an exchange's live feed, through Redis
(the reads, and which path brings an exchange's prices, are market.selectors' feed_states and
feed_path)."""

from django.core.cache import cache

from core import keys


def publish_feed_state(source: str, live_since_ms: int | None, seen_ms: int | None, down_since_ms: int | None,
                       detail: str) -> None:
    """What the ingest process tells every other process about an exchange's feed: live since
    when (None: not live), the last time it was heard from, and why it is down."""
    state = {"live_since": live_since_ms, "seen": seen_ms, "down_since": down_since_ms, "detail": detail[:300]}
    cache.set(keys.feed(source), state, timeout=None)

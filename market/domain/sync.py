"""Which candle ranges to fetch: backfill, refresh of the newest, and gaps."""

from .candles import gap_ranges, missing_open_times
from .timeframes import TIMEFRAMES, align


def backfill_start(timeframe: str, now_ms: int, backfill: int) -> int:
    return align(now_ms, timeframe) - (backfill - 1) * TIMEFRAMES[timeframe]


def plan_ranges(
    timeframe: str, now_ms: int, backfill: int, last_stored: int | None, stored: list[int] | None = None
) -> list[tuple[int, int]]:
    """Ranges [first, last] of open times to fetch for one series.

    Nothing stored: the whole backfill window. Otherwise from the newest stored candle (it
    may have been open when stored) to now, which also covers any outage; with `stored` (the
    open times in the backfill window) the holes inside it too.
    """
    newest = align(now_ms, timeframe)
    oldest = backfill_start(timeframe, now_ms, backfill)
    if last_stored is None:
        return [(oldest, newest)]
    ranges = []
    if stored is not None:
        holes = missing_open_times(stored, timeframe, oldest, last_stored)
        ranges.extend(gap_ranges(holes, timeframe))
    ranges.append((max(last_stored, oldest), newest))
    return ranges


def sync_period_ms(timeframe: str, base_interval_s: float) -> int:
    """How often a timeframe's newest candles are refreshed: often for short ones, at most
    every 5 minutes for long ones (their newest candle also moves with every tick)."""
    return int(min(max(base_interval_s * 1000, TIMEFRAMES[timeframe] / 10), 300_000))

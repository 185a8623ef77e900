"""Candle timeframes and the alignment of candle open times (weeks start Monday 00:00 UTC)."""

from .errors import InvalidInput

MINUTE = 60_000
TIMEFRAMES: dict[str, int] = {
    "1m": MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": 60 * MINUTE,
    "4h": 240 * MINUTE,
    "1d": 1440 * MINUTE,
    "1w": 10080 * MINUTE,
}
WEEK = TIMEFRAMES["1w"]
# 1970-01-01 was a Thursday; the first Monday 00:00 UTC is 4 days later.
_MONDAY_OFFSET = 4 * TIMEFRAMES["1d"]


def parse_timeframe(raw: object) -> str:
    if isinstance(raw, str) and raw in TIMEFRAMES:
        return raw
    choices = ", ".join(TIMEFRAMES)
    raise InvalidInput(f"Invalid timeframe: {raw}. Must be one of: {choices}")


def duration_ms(timeframe: str) -> int:
    return TIMEFRAMES[timeframe]


def align(ts_ms: int, timeframe: str) -> int:
    """The open time of the candle of `timeframe` that contains `ts_ms`."""
    size = TIMEFRAMES[timeframe]
    if timeframe == "1w":
        return (ts_ms - _MONDAY_OFFSET) // WEEK * WEEK + _MONDAY_OFFSET
    return ts_ms // size * size


def is_closed(open_time_ms: int, timeframe: str, now_ms: int) -> bool:
    return open_time_ms + TIMEFRAMES[timeframe] <= now_ms

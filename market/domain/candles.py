"""OHLCV candles: the value type, aggregation to a larger timeframe, and gap detection."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from .timeframes import TIMEFRAMES, align, is_closed


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: int  # epoch ms, aligned to the timeframe
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool = True

    def with_closed(self, timeframe: str, now_ms: int) -> "Candle":
        return replace(self, closed=is_closed(self.open_time, timeframe, now_ms))


def aggregate(candles: Iterable[Candle], timeframe: str, now_ms: int) -> list[Candle]:
    """Fold smaller candles (oldest first) into candles of `timeframe`.

    A bucket's open is its first candle's open, its close the last one's close. A bucket is
    closed only when its period has ended.
    """
    out: list[Candle] = []
    bucket: list[Candle] = []
    bucket_time: int | None = None

    def flush() -> None:
        if bucket:
            out.append(
                Candle(
                    open_time=bucket_time,
                    open=bucket[0].open,
                    high=max(c.high for c in bucket),
                    low=min(c.low for c in bucket),
                    close=bucket[-1].close,
                    volume=sum((c.volume for c in bucket), Decimal(0)),
                    closed=is_closed(bucket_time, timeframe, now_ms),
                )
            )

    for candle in sorted(candles, key=lambda c: c.open_time):
        start = align(candle.open_time, timeframe)
        if start != bucket_time:
            flush()
            bucket = []
            bucket_time = start
        bucket.append(candle)
    flush()
    return out


def base_window(timeframe: str, base_timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> tuple[int, int]:
    """The open times (first, last) of the `base_timeframe` candles that make whole `timeframe`
    candles over [start, end], none newer than the one open now."""
    first = align(start_ms, timeframe)
    last = align(end_ms, timeframe) + TIMEFRAMES[timeframe] - TIMEFRAMES[base_timeframe]
    return first, min(last, align(now_ms, base_timeframe))


def built(base: dict[int, Candle], base_timeframe: str, timeframe: str, start_ms: int, end_ms: int,
          now_ms: int) -> list[Candle]:
    """The `timeframe` candles opening in [start, end], oldest first, from `base_timeframe` candles
    by open time (the same timeframe, or a finer one to aggregate), `closed` set against now."""
    candles = [base[t].with_closed(base_timeframe, now_ms) for t in sorted(base)]
    if base_timeframe != timeframe:
        candles = aggregate(candles, timeframe, now_ms)
    return [c for c in candles if start_ms <= c.open_time <= end_ms]


def missing_open_times(open_times: Iterable[int], timeframe: str, start_ms: int, end_ms: int) -> list[int]:
    """Open times in [start, end] (both aligned) for which no candle exists."""
    size = TIMEFRAMES[timeframe]
    have = set(open_times)
    expected = range(align(start_ms, timeframe), align(end_ms, timeframe) + 1, size)
    return [t for t in expected if t not in have]


def gap_ranges(missing: list[int], timeframe: str) -> list[tuple[int, int]]:
    """Missing open times grouped into contiguous [first, last] ranges."""
    size = TIMEFRAMES[timeframe]
    ranges: list[tuple[int, int]] = []
    for t in sorted(missing):
        if ranges and t - ranges[-1][1] == size:
            ranges[-1] = (ranges[-1][0], t)
        else:
            ranges.append((t, t))
    return ranges

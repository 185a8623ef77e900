from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from market.domain.candles import Candle, aggregate, gap_ranges, missing_open_times
from market.domain.errors import InvalidInput
from market.domain.sync import plan_ranges
from market.domain.timeframes import TIMEFRAMES, align, is_closed, parse_timeframe

H = TIMEFRAMES["1h"]
M = TIMEFRAMES["1m"]


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_an_unknown_timeframe_error_lists_every_valid_one():
    with pytest.raises(InvalidInput) as err:
        parse_timeframe("2h")
    assert str(err.value) == "Invalid timeframe: 2h. Must be one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w"


def test_weeks_start_on_monday_midnight_utc():
    # 2024-01-17 was a Wednesday; its week began Monday 2024-01-15.
    assert align(ms(2024, 1, 17, 13, 45), "1w") == ms(2024, 1, 15)
    assert align(ms(2024, 1, 15), "1w") == ms(2024, 1, 15)
    assert align(ms(2024, 1, 14, 23, 59), "1w") == ms(2024, 1, 8)


def test_other_timeframes_align_to_their_own_period():
    t = ms(2024, 1, 17, 13, 47, 30)
    assert align(t, "1m") == ms(2024, 1, 17, 13, 47)
    assert align(t, "15m") == ms(2024, 1, 17, 13, 45)
    assert align(t, "4h") == ms(2024, 1, 17, 12)
    assert align(t, "1d") == ms(2024, 1, 17)


def test_a_candle_is_closed_only_once_its_period_has_ended():
    assert not is_closed(ms(2024, 1, 1, 10), "1h", ms(2024, 1, 1, 10, 59, 59))
    assert is_closed(ms(2024, 1, 1, 10), "1h", ms(2024, 1, 1, 11))


def candle(t, o, h, low, c, v="1"):
    return Candle(t, D(o), D(h), D(low), D(c), D(v))


def test_aggregation_takes_first_open_last_close_extremes_and_summed_volume():
    base = ms(2024, 1, 1, 10)
    minutes = [candle(base + i * M, 10 + i, 20 + i, 5 - i % 3, 11 + i, "0.1") for i in range(60)]
    minutes += [candle(base + H, 99, 99, 99, 99)]  # belongs to the next hour
    hours = aggregate(minutes, "1h", now_ms=base + H + 30 * M)
    assert [h.open_time for h in hours] == [base, base + H]
    first = hours[0]
    assert (first.open, first.high, first.low, first.close) == (D(10), D(79), D(3), D(70))
    assert first.volume == D("6.0") and first.closed is True
    assert hours[1].closed is False


def test_missing_open_times_and_their_ranges():
    base = ms(2024, 1, 1)
    have = [base, base + M, base + 4 * M, base + 7 * M]
    missing = missing_open_times(have, "1m", base, base + 7 * M)
    assert missing == [base + 2 * M, base + 3 * M, base + 5 * M, base + 6 * M]
    assert gap_ranges(missing, "1m") == [(base + 2 * M, base + 3 * M), (base + 5 * M, base + 6 * M)]


def test_sync_plan_backfills_when_empty_and_refreshes_from_the_newest_candle_otherwise():
    now = ms(2024, 1, 1, 12, 30)
    assert plan_ranges("1h", now, 10, None) == [(ms(2024, 1, 1, 3), ms(2024, 1, 1, 12))]
    assert plan_ranges("1h", now, 10, ms(2024, 1, 1, 9)) == [(ms(2024, 1, 1, 9), ms(2024, 1, 1, 12))]
    stored = [ms(2024, 1, 1, h) for h in (3, 4, 7, 8, 9)]
    assert plan_ranges("1h", now, 10, ms(2024, 1, 1, 9), stored) == [
        (ms(2024, 1, 1, 5), ms(2024, 1, 1, 6)),
        (ms(2024, 1, 1, 9), ms(2024, 1, 1, 12)),
    ]

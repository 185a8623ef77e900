import time

import pytest

from market.domain.candles import aggregate
from market.domain.timeframes import TIMEFRAMES, align
from sandbox import simulation as sim

NOW = 1_795_000_000_000  # a fixed moment, so the test is repeatable


@pytest.mark.parametrize("parent,child", [("1h", "1m"), ("4h", "15m"), ("1d", "1h"), ("1w", "1d"), ("30m", "5m")])
def test_every_timeframe_is_exactly_the_aggregate_of_a_smaller_one(parent, child):
    size = TIMEFRAMES[parent]
    for c in sim.series("BTC", parent, NOW - 5 * size, NOW, NOW):
        parts = sim.series("BTC", child, c.open_time, c.open_time + size - 1, NOW)
        agg = aggregate(parts, parent, NOW)[0]
        assert (agg.open, agg.high, agg.low, agg.close, agg.volume) == (c.open, c.high, c.low, c.close, c.volume)
        assert agg.closed == c.closed


def test_consecutive_candles_join_close_to_open():
    candles = sim.series("ETH", "5m", NOW - 50 * TIMEFRAMES["5m"], NOW, NOW)
    assert all(a.close == b.open for a, b in zip(candles, candles[1:]))


def test_the_current_candle_is_open_and_only_grows_as_time_passes():
    start = align(NOW, "1h")
    early = sim.revealed("SOL", "1h", start, start + 10 * 60_000)
    later = sim.revealed("SOL", "1h", start, start + 40 * 60_000)
    assert not early.closed and not later.closed
    assert later.high >= early.high and later.low <= early.low
    assert later.volume >= early.volume
    full = sim.candle("SOL", "1h", start)
    assert full.high >= later.high and full.low <= later.low


def test_the_simulation_is_deterministic_across_runs():
    a = sim.series("ADA", "1m", NOW - 10 * 60_000, NOW, NOW)
    sim.children.cache_clear()
    sim._week.cache_clear()
    b = sim.series("ADA", "1m", NOW - 10 * 60_000, NOW, NOW)
    assert a == b


def test_no_candle_beyond_now_is_served():
    now = int(time.time() * 1000)
    candles = sim.series("BTC", "1m", now - 5 * 60_000, now + 3_600_000, now)
    assert candles[-1].open_time == align(now, "1m")

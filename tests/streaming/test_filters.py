"""A price subscription's filters: pure, no database."""

import pytest

from streaming.filters import PriceFilter
from streaming.protocol import ProtocolError, parse_subscriptions


def sent(filter_: PriceFilter, prices: list[tuple[int, float]]) -> list[int]:
    out = []
    for ts, price in prices:
        if filter_.admits(ts, price):
            filter_.sent(ts, price)
            out.append(ts)
    return out


def test_min_interval_sends_at_most_one_price_per_interval_by_the_ticks_time():
    assert sent(PriceFilter(10, 0), [(0, 1.0), (5_000, 2.0), (9_999, 3.0), (10_000, 4.0), (15_000, 5.0), (21_000, 6.0)]) == [
        0, 10_000, 21_000]


def test_min_change_pct_compares_with_the_last_price_sent_not_the_last_seen():
    # 100 -> 100.05 -> 100.1: each step is 0.05%, but the second is 0.1% from the one sent.
    assert sent(PriceFilter(0, 0.1), [(1, 100.0), (2, 100.05), (3, 100.1), (4, 100.0), (5, 99.9)]) == [1, 3, 5]


def test_both_filters_must_admit_a_price():
    assert sent(PriceFilter(10, 1), [(0, 100.0), (1_000, 120.0), (10_000, 100.5), (11_000, 102.0)]) == [0, 11_000]


def test_a_filter_starts_from_the_price_already_sent():
    assert not PriceFilter(10, 0, last=(0, 1.0)).admits(5_000, 2.0)


@pytest.mark.parametrize("message, fragment", [
    ({"min_interval": -1}, "Invalid min_interval"),
    ({"min_interval": "10"}, "Invalid min_interval"),
    ({"min_interval": 86_401}, "Invalid min_interval"),
    ({"min_change_pct": 101}, "Invalid min_change_pct"),
    ({"min_change_pct": False}, "Invalid min_change_pct"),
    ({"min_interval": 5, "channel": "ohlc"}, "go with the prices channel"),
])
def test_bad_filters_are_a_protocol_error(settings, message, fragment):
    with pytest.raises(ProtocolError, match=fragment):
        parse_subscriptions({"type": "subscribe", "symbol": "BTC", **message})


def test_filters_are_part_of_the_subscription_but_not_of_what_it_follows(settings):
    [sub] = parse_subscriptions({"type": "subscribe", "symbol": "BTC", "min_interval": 10, "min_change_pct": 0.1})
    [plain] = parse_subscriptions({"type": "subscribe", "symbol": "BTC"})
    assert (sub.min_interval, sub.min_change_pct, sub.filtered) == (10.0, 0.1, True)
    assert not plain.filtered and plain.series == sub.series

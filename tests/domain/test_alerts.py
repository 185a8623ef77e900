"""Price alerts' conditions and their sliding window: pure, no database."""

import pytest

from market.domain.alerts import Alert, AlertSpec, PriceWindow, parse_alert, parse_window, window_ms
from market.domain.errors import InvalidInput

MIN = 60_000


def spec(condition="above", threshold=100.0, window=None, repeat=False) -> AlertSpec:
    return AlertSpec("binance", "BTC", condition, threshold, window, repeat)


def fired(alert: Alert, prices: list[tuple[int, float]]) -> list[int]:
    return [ts for ts, price in prices if alert.check(ts, price) is not None]


def test_above_fires_once_at_the_first_price_at_or_past_the_level():
    alert = Alert("a1", spec("above", 100))
    assert fired(alert, [(1, 99.0), (2, 100.0), (3, 101.0), (4, 90.0), (5, 120.0)]) == [2]
    assert alert.done


def test_below_does_not_fire_for_prices_that_stay_above():
    alert = Alert("a1", spec("below", 100))
    assert fired(alert, [(1, 101.0), (2, 150.0), (3, 100.01)]) == []
    assert not alert.done
    assert fired(alert, [(4, 99.5)]) == [4]


def test_a_repeating_alert_fires_again_only_after_the_price_crossed_back():
    alert = Alert("a1", spec("above", 100, repeat=True))
    assert fired(alert, [(1, 101.0), (2, 102.0), (3, 105.0), (4, 99.0), (5, 100.0), (6, 98.0), (7, 103.0)]) == [1, 5, 7]
    assert not alert.done


def test_prices_stored_before_the_alert_and_repeated_or_late_ones_are_not_checked():
    alert = Alert("a1", spec("above", 100), since_ms=10)
    assert fired(alert, [(10, 200.0), (9, 200.0)]) == []
    assert fired(alert, [(11, 200.0), (11, 200.0)]) == [11]


def test_change_pct_compares_with_the_price_one_window_earlier_either_way():
    history = [(0, 100.0), (30 * MIN, 103.0)]
    up = Alert("a1", spec("change_pct", 5, "1h"), history=history)
    assert up.check(59 * MIN, 110.0) is None  # no price an hour before yet
    message = up.check(60 * MIN, 105.0)
    assert message == {"price": 105.0, "timestamp": 60 * MIN, "change": 5.0, "reference_price": 100.0, "reference_timestamp": 0}
    down = Alert("a2", spec("change_pct", 5, "1h"), history=history)
    assert fired(down, [(90 * MIN, 98.0), (91 * MIN, 97.0)]) == [91 * MIN]  # against 103 from 30 minutes in
    assert down.check(92 * MIN, 90.0) is None  # done


def test_a_repeating_change_alert_rearms_when_the_move_falls_under_the_threshold():
    alert = Alert("a1", spec("change_pct", 10, "1h", repeat=True), history=[(0, 100.0)])
    assert fired(alert, [(60 * MIN, 111.0), (61 * MIN, 112.0), (62 * MIN, 105.0), (63 * MIN, 115.0)]) == [60 * MIN, 63 * MIN]


def test_the_window_holds_a_bounded_number_of_prices_whatever_arrives():
    window = PriceWindow(window_ms("1h"), points=120)
    for second in range(0, 6 * 3600):  # six hours of one price a second
        window.add(second * 1000, float(second))
    assert len(window.samples) <= 122
    ts = (6 * 3600 - 1) * 1000
    ref_ts, _ = window.reference(ts)
    assert ts - window_ms("1h") - window.step < ref_ts <= ts - window_ms("1h")


@pytest.mark.parametrize("raw", ["1m", "15m", "1h", "24h", "1d", "1440m"])
def test_windows_from_a_minute_to_a_day_are_accepted(raw):
    assert parse_window(raw) == raw


@pytest.mark.parametrize("raw", ["0m", "2d", "25h", "1w", "1s", "h", "1.5h", 60, None, " 1h"])
def test_other_windows_are_refused_with_the_units_named(raw):
    with pytest.raises(InvalidInput, match="Invalid window.*minutes, hours or days"):
        parse_window(raw)


@pytest.mark.parametrize("data, fragment", [
    ({}, "exactly one condition"),
    ({"above": 1, "below": 2}, "exactly one condition"),
    ({"above": 0}, "Invalid above"),
    ({"below": -5}, "Invalid below"),
    ({"above": "70000"}, "Invalid above"),
    ({"above": True}, "Invalid above"),
    ({"above": float("inf")}, "Invalid above"),
    ({"change_pct": 5}, "needs a window"),
    ({"change_pct": 0, "window": "1h"}, "Invalid change_pct"),
    ({"change_pct": 5000, "window": "1h"}, "Invalid change_pct"),
    ({"above": 5, "window": "1h"}, "window goes with change_pct"),
    ({"above": 5, "repeat": "yes"}, "Invalid repeat"),
])
def test_bad_alerts_are_refused_naming_the_reason(data, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        parse_alert(data, "binance", "BTC")


def test_an_alert_describes_itself_with_the_fields_it_was_set_with():
    assert parse_alert({"change_pct": 5, "window": "1h", "repeat": True}, "binance", "BTC").describe() == {
        "symbol": "BTC", "source": "binance", "change_pct": 5.0, "window": "1h", "repeat": True}
    assert parse_alert({"above": 70000}, "coinbase", "ETH").describe() == {
        "symbol": "ETH", "source": "coinbase", "above": 70000.0, "repeat": False}


# --- the index-friendly form of the same rule --------------------------------------------------
def test_a_threshold_book_finds_exactly_the_alerts_a_price_meets_by_the_same_rule():
    import random

    from market.domain.alerts import ThresholdBook, level_met

    rng = random.Random(7)
    for condition in ("above", "below"):
        entries = [(float(rng.choice([90, 95, 100, 100, 105, 110])) + rng.random() * 3, i) for i in range(300)]
        book = ThresholdBook(condition, entries)
        for price in [89.0, 95.0, 100.0, 101.5, 113.0, *[90 + rng.random() * 25 for _ in range(50)]]:
            expected = {i for t, i in entries if level_met(condition, t, price)}
            assert set(book.met(price)) == expected
            assert set(book.unmet(price)) == {i for _, i in entries} - expected


def test_a_threshold_book_counts_a_price_exactly_at_the_level_as_met_both_ways():
    from market.domain.alerts import ThresholdBook

    assert ThresholdBook("above", [(100.0, "a"), (100.0, "b"), (101.0, "c")]).met(100.0) == ["a", "b"]
    assert ThresholdBook("below", [(99.0, "a"), (100.0, "b"), (101.0, "c")]).met(100.0) == ["b", "c"]


def test_a_change_pct_book_is_met_by_a_move_of_at_least_its_size_either_way():
    from market.domain.alerts import ThresholdBook, change_met

    book = ThresholdBook("change_pct", [(1.0, "one"), (2.5, "two-and-a-half"), (5.0, "five")])
    assert book.met(abs(-2.5)) == ["one", "two-and-a-half"]
    assert book.unmet(2.5) == ["five"]
    assert change_met(2.5, -2.5) and not change_met(2.5, None)


def test_alerts_added_to_and_discarded_from_a_threshold_book_keep_it_sorted():
    from market.domain.alerts import ThresholdBook

    book = ThresholdBook("above", [(100.0, "a"), (105.0, "b")])
    book.add(100.0, "c")
    book.add(90.0, "d")
    book.discard(100.0, "a")
    book.discard(100.0, "nobody")
    assert book.met(100.0) == ["d", "c"] and book.unmet(100.0) == ["b"] and len(book) == 3

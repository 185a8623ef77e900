"""One market's alerts by threshold (alerts.index): which a price fires or re-arms, without a
database; the same answers as market.domain.alerts.Alert checking each alert."""

import random

from alerts.index import MarketIndex, Row, Windows
from market.domain.alerts import Alert, AlertSpec

MIN = 60_000


def row(alert_id, condition="above", threshold=100.0, window="", repeat=False, armed=True, since=0):
    return Row(alert_id, condition, threshold, window, repeat, armed, since)


def no_history(span):
    return None


def test_a_price_fires_the_armed_alerts_it_meets_and_nothing_else():
    index = MarketIndex([row(1, "above", 100), row(2, "above", 110), row(3, "below", 90), row(4, "below", 100)])
    out = index.check(10, 100.0, no_history)
    assert sorted(out.fire) == [1, 4] and out.rearm == []


def test_an_alert_set_after_a_price_is_not_fired_by_it():
    index = MarketIndex([row(1, since=10), row(2, since=5)])
    assert index.check(10, 150.0, no_history).fire == [2]


def test_an_older_or_repeated_price_is_checked_once():
    index = MarketIndex([row(1)])
    assert index.check(10, 150.0, no_history).fire == [1]
    assert index.check(10, 150.0, no_history).fire == []
    assert index.check(9, 150.0, no_history).fire == []


def test_a_fired_repeat_alert_waits_for_a_price_that_no_longer_meets_it():
    index = MarketIndex([row(1, repeat=True), row(2)])
    assert sorted(index.check(1, 120.0, no_history).fire) == [1, 2]
    index.fired(1)
    index.fired(2)
    assert index.check(2, 130.0, no_history).fire == [] and index.check(3, 130.0, no_history).rearm == []
    assert index.check(4, 99.0, no_history).rearm == [1]  # the one-shot is gone for good
    index.rearmed(1)
    assert index.check(5, 101.0, no_history).fire == [1]


def test_change_pct_compares_with_the_reference_of_its_window_either_way():
    index = MarketIndex([row(1, "change_pct", 5, "1h"), row(2, "change_pct", 10, "1h"), row(3, "change_pct", 2, "15m")])
    refs = {60 * MIN: (0, 100.0), 15 * MIN: (0, 94.0)}
    out = index.check(2 * 60 * MIN, 94.0, refs.get)  # -6% over the hour, 0% over 15 minutes
    assert out.fire == [1] and out.fields[1] == {"change": -6.0, "reference_price": 100.0, "reference_timestamp": 0}


def test_without_enough_history_change_pct_does_not_fire():
    index = MarketIndex([row(1, "change_pct", 5, "1h")])
    assert index.check(10, 1000.0, no_history).fire == []


def test_the_index_agrees_with_checking_each_alert_one_by_one():
    rng = random.Random(3)
    specs = {i: AlertSpec("binance", "BTC", rng.choice(["above", "below"]), rng.uniform(90, 110), None, rng.random() < 0.5)
             for i in range(200)}
    one_by_one = {i: Alert(str(i), s) for i, s in specs.items()}
    index = MarketIndex([row(i, s.condition, s.threshold, "", s.repeat) for i, s in specs.items()])
    price = 100.0
    for ts in range(1, 300):
        price = max(80.0, min(120.0, price + rng.uniform(-3, 3)))
        expected = {i for i, a in one_by_one.items() if a.check(ts, price) is not None}
        out = index.check(ts, price, no_history)
        assert set(out.fire) == expected
        for i in out.fire:
            index.fired(i)
        for i in out.rearm:
            index.rearmed(i)


def test_windows_load_history_once_and_again_only_after_a_gap_in_what_this_process_saw():
    loads = []

    def load(since):
        loads.append(since)
        return [(t, 100.0 + t / MIN) for t in range(0, 61 * MIN, MIN) if t >= since - MIN]

    windows = Windows(load)
    assert windows.reference(60 * MIN, 61 * MIN, 200.0) == (MIN, 101.0)
    assert windows.reference(60 * MIN, 61 * MIN + 5000, 200.0) == (MIN, 101.0)
    assert len(loads) == 1
    windows.reference(60 * MIN, 70 * MIN, 200.0)  # nine minutes unseen: longer than the 30 s step
    assert len(loads) == 2

"""The rules for taking in a live feed: pure, no database."""

import random
from decimal import Decimal as D

import pytest

from market.domain.feeds import Sequences, Throttle, Trade, feed_is_live, reconnect_delay


def trade(t: int, price: str = "1") -> Trade:
    return Trade("BTC", D(price), t)


class TestThrottle:
    def test_the_first_value_goes_out_at_once(self):
        throttle = Throttle(1000)
        assert throttle.offer("BTC", trade(0), now_ms=0) == trade(0)
        assert throttle.next_due_ms() is None

    def test_values_within_the_interval_are_held_and_the_newest_goes_out_when_it_ends(self):
        throttle = Throttle(1000)
        throttle.offer("BTC", trade(0), 0)
        assert throttle.offer("BTC", trade(300, "2"), 300) is None
        assert throttle.offer("BTC", trade(600, "3"), 600) is None
        assert throttle.next_due_ms() == 1000
        assert throttle.due(999) == []
        assert throttle.due(1000) == [trade(600, "3")]
        assert throttle.due(5000) == []  # sent once

    def test_at_most_one_value_per_interval_whatever_the_rate(self):
        throttle = Throttle(1000)
        sent = []
        for now in range(0, 10_000, 50):  # 20 values a second for 10 s
            out = throttle.offer("BTC", trade(now), now)
            sent += [now] if out else []
            sent += [now for _ in throttle.due(now)]
        assert all(b - a >= 1000 for a, b in zip(sent, sent[1:]))
        assert len(sent) >= 9

    def test_keys_are_throttled_apart(self):
        throttle = Throttle(1000)
        assert throttle.offer("BTC", trade(0), 0)
        assert throttle.offer("ETH", trade(10), 10)

    def test_force_sends_at_once_and_drops_what_was_held(self):
        throttle = Throttle(1000)
        throttle.offer("k", 1, 0)
        throttle.offer("k", 2, 100)
        assert throttle.offer("k", 3, 200, force=True) == 3
        assert throttle.due(10_000) == []

    def test_take_hands_over_the_held_value(self):
        throttle = Throttle(1000)
        throttle.offer("k", 1, 0)
        throttle.offer("k", 2, 100)
        assert throttle.take("k") == 2 and throttle.take("k") is None


class TestSequences:
    def test_consecutive_ids_are_new_without_a_gap(self):
        seq = Sequences()
        assert [seq.check("BTC", i) for i in (5, 6, 7)] == [(True, False)] * 3

    def test_a_skipped_id_is_a_gap(self):
        seq = Sequences()
        seq.check("BTC", 5)
        assert seq.check("BTC", 7) == (True, True)

    def test_an_id_already_seen_is_not_new(self):
        seq = Sequences()
        seq.check("BTC", 5)
        seq.check("BTC", 6)
        assert seq.check("BTC", 6) == (False, False)
        assert seq.check("BTC", 4) == (False, False)

    def test_after_a_reset_the_next_id_is_a_new_baseline(self):
        seq = Sequences()
        seq.check("BTC", 5)
        seq.reset("BTC")
        assert seq.check("BTC", 100) == (True, False)

    def test_markets_are_counted_apart_and_ids_may_be_absent(self):
        seq = Sequences()
        seq.check("BTC", 5)
        assert seq.check("ETH", 1) == (True, False)
        assert seq.check("BTC", None) == (True, False)


class TestReconnectDelay:
    def test_it_grows_to_the_cap_with_jitter(self):
        rng = random.Random(7)
        delays = [[reconnect_delay(a, base=1, cap=30, rng=rng) for _ in range(200)] for a in (1, 3, 10)]
        assert all(0.5 <= d <= 1 for d in delays[0])
        assert all(0.5 <= d <= 4 for d in delays[1])
        assert all(0.5 <= d <= 30 for d in delays[2]) and max(delays[2]) > 20
        assert len({round(d, 3) for d in delays[2]}) > 100  # spread: clients cut off together come back apart


@pytest.mark.parametrize(
    "live_since, seen, now, expected",
    [
        (1000, 9000, 10_000, True),
        (1000, 1000, 11_000, True),  # exactly two intervals of 5 s
        (1000, 1000, 11_001, False),  # silent for longer: the poller takes over
        (None, 9000, 10_000, False),  # never declared live (subscribing, resyncing)
        (1000, None, 10_000, False),
    ],
)
def test_a_feed_is_live_while_declared_live_and_heard_within_two_poll_intervals(live_since, seen, now, expected):
    assert feed_is_live(live_since, seen, now, 5.0) is expected

"""streaming.session: one connection's state, without a connection, a database or Redis."""

from market.domain.alerts import Alert, AlertSpec
from streaming.protocol import Subscription
from streaming.session import Session

BTC = ("binance", "BTC")


def test_more_messages_than_the_limit_within_one_second_are_too_many():
    session = Session(max_messages_per_second=3)
    assert [session.over_rate() for _ in range(4)] == [False, False, False, True]


def test_each_message_sent_gets_the_next_seq_as_its_last_member():
    session = Session(10)
    assert session.numbered('{"type": "pong"}') == '{"type": "pong", "seq": 1}'
    assert session.numbered('{"type": "pong"}') == '{"type": "pong", "seq": 2}'


def test_a_price_is_new_only_if_newer_than_every_one_sent_for_its_market():
    session = Session(10)
    price = {"source": "binance", "symbol": "BTC", "timestamp": 1000}
    assert session.is_new(price) and not session.is_new(price)
    assert not session.is_new({**price, "timestamp": 999}) and session.is_new({**price, "timestamp": 1001})


def test_a_plain_price_subscription_takes_the_fast_path_and_a_filter_or_an_alert_the_slow_one():
    session = Session(10)
    session.follow(Subscription(*BTC))
    assert BTC not in session.watched
    session.follow(Subscription(*BTC, min_change_pct=1.0), replacing=Subscription(*BTC))
    assert BTC in session.watched and BTC in session.filters
    session.follow(Subscription(*BTC), replacing=Subscription(*BTC, min_change_pct=1.0))
    assert BTC not in session.watched and BTC not in session.filters
    session.alerts.add(Alert(session.alerts.next_id(), AlertSpec(*BTC, "above", 100.0)))
    session.rewatch(BTC)
    assert BTC in session.watched and session.needs_prices(BTC)


def test_an_unsubscribed_market_is_still_needed_by_its_alert_and_then_by_nothing():
    session = Session(10)
    session.follow(Subscription(*BTC))
    session.alerts.add(Alert("a1", AlertSpec(*BTC, "above", 100.0)))
    session.forget(Subscription(*BTC))
    assert session.needs_prices(BTC) and session.unpolled_alert_markets() == {BTC}
    fired, done = session.alerts.check(BTC, 1000, 101.0)
    assert [m["id"] for m in fired] == ["a1"] and done == 1
    assert not session.needs_prices(BTC)

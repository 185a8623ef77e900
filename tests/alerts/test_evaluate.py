"""Evaluation of stored prices against persistent alerts: only the moved markets' alerts, each
fire exactly once (whoever else checks the same prices), repeat alerts re-armed by a price that no
longer meets them, change_pct against the window's stored reference."""

import json
import threading
import time
from decimal import Decimal as D

import pytest
from django.db import OperationalError, connection

from alerts import services
from alerts.index import Outcome
from alerts.models import Delivery, PriceAlert
from market.domain.alerts import AlertSpec
from market.domain.prices import Quote
from market.prices import record_quotes
from market.ticks import StoredTick

from .conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)
MIN = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def store(price, at, symbol="BTC", source="binance") -> list[StoredTick]:
    return record_quotes(source, [Quote(symbol, D(str(price)), at)], at)


def alert(condition="above", threshold=100.0, window=None, repeat=False, symbol="BTC", url="http://127.0.0.1:9/hook"):
    key = new_key(f"k{PriceAlert.objects.count()}")[0]
    return services.create_alert(key, AlertSpec("binance", symbol, condition, threshold, window, repeat), url)[0]


def fired(alert_id) -> int:
    return PriceAlert.objects.get(pk=alert_id).fired_count


@pytest.fixture(autouse=True)
def _nothing_sent(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "_enqueue", sent.extend)  # the deliveries queued, kept here (test_delivery sends them)
    return sent


def test_a_price_crossing_a_level_fires_the_alert_once_and_queues_one_delivery(_nothing_sent):
    t = now_ms()
    store(90, t)
    a, b, c = alert("above", 100), alert("above", 120), alert("below", 95)
    ticks = store(105, t + 1000)
    assert services.evaluate(ticks) == 1
    assert services.evaluate(ticks) == 0  # the same prices again
    assert (fired(a.id), fired(b.id), fired(c.id)) == (1, 0, 0)
    assert PriceAlert.objects.get(pk=a.id).state == "fired"
    assert [str(d.id) for d in Delivery.objects.all()] == _nothing_sent
    assert services.evaluate(store(130, t + 2000)) == 1  # b now; a never again
    assert (fired(a.id), fired(b.id)) == (1, 1)


def test_a_second_process_with_a_stale_index_does_not_fire_the_alert_again():
    t = now_ms()
    store(90, t)
    a = alert("above", 100)
    ticks = store(105, t + 1000)
    services.evaluate([])  # nothing
    stale = services.load_index("binance", "BTC", services._versions([("binance", "BTC")])[0])
    assert services.evaluate(ticks) == 1
    # Another process built its index before this fire and checks the same prices.
    version = services._versions([("binance", "BTC")])[0]
    stale.version, stale.built = version, time.monotonic()
    services._indexes[("binance", "BTC")] = stale
    assert services.evaluate(ticks) == 0
    assert fired(a.id) == 1 and Delivery.objects.count() == 1


def test_two_callers_firing_the_same_alert_at_once_fire_it_exactly_once():
    t = now_ms()
    store(90, t)
    a = alert("above", 100)
    [tick] = store(105, t + 1000)
    results, barrier = [], threading.Barrier(4)

    def fire():
        barrier.wait()
        try:
            while True:
                try:
                    results.append(services._apply([[(tick, 105.0, Outcome([a.id], [], {}))]]))
                    return
                except OperationalError as exc:  # the tests' in-memory SQLite: one writer at a time, no waiting
                    assert "locked" in str(exc)
                    time.sleep(0.01)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 0, 1]
    assert fired(a.id) == 1 and Delivery.objects.count() == 1


def test_only_the_moved_markets_alerts_are_read(django_assert_max_num_queries):
    t = now_ms()
    store(90, t)
    store(10, t, symbol="ETH")
    alert("above", 100)
    alert("above", 20, symbol="ETH")
    ticks = store(95, t + 1000)
    services.evaluate(ticks)  # loads BTC's index
    ticks = store(96, t + 2000)
    with django_assert_max_num_queries(0):  # BTC's alerts are indexed; no price met any
        assert services.evaluate(ticks) == 0
    assert set(services._indexes) == {("binance", "BTC")}  # ETH's alerts were never read


def test_a_repeat_alert_fires_again_only_after_a_price_that_no_longer_meets_it():
    t = now_ms()
    store(90, t)
    a = alert("above", 100, repeat=True)
    assert services.evaluate(store(101, t + 1000)) == 1
    assert PriceAlert.objects.get(pk=a.id).state == "rearming"
    assert services.evaluate(store(105, t + 2000)) == 0
    assert services.evaluate(store(100, t + 3000)) == 0  # at the level: still met
    assert services.evaluate(store(99, t + 4000)) == 0  # crossed back: armed again
    assert PriceAlert.objects.get(pk=a.id).state == "armed"
    assert services.evaluate(store(102, t + 5000)) == 1
    assert fired(a.id) == 2 and Delivery.objects.count() == 2


def test_change_pct_fires_on_a_move_of_its_size_over_its_window_either_way():
    t = now_ms() - 30 * MIN
    for i in range(20):  # 100 for twenty minutes
        store(100, t + i * MIN)
    down = alert("change_pct", 5, window="15m")
    big = alert("change_pct", 20, window="15m")
    assert services.evaluate(store(96, t + 20 * MIN)) == 0  # -4 %
    assert services.evaluate(store(94.9, t + 21 * MIN)) == 1  # -5.1 % against the price 15 minutes before
    [delivery] = Delivery.objects.all()
    assert delivery.alert_id == down.id and '"change":-5.1' in delivery.body and '"reference_price":100.0' in delivery.body
    assert fired(big.id) == 0


def test_an_alert_is_not_fired_by_prices_stored_before_it_was_set():
    t = now_ms()
    ticks = store(150, t)
    alert("above", 100)
    assert services.evaluate(ticks) == 0
    assert services.evaluate(store(151, t + 1000)) == 1


def test_an_alert_deleted_is_not_fired():
    t = now_ms()
    store(90, t)
    a = alert("above", 100)
    services.evaluate(store(91, t + 1000))  # indexed
    services.delete_alert(a.key, a.id)
    assert services.evaluate(store(120, t + 2000)) == 0 and Delivery.objects.count() == 0


def test_a_failing_evaluation_is_logged_and_does_not_raise(monkeypatch, caplog):
    monkeypatch.setattr(services, "evaluate", lambda ticks: 1 / 0)
    services.evaluate_safely([StoredTick("binance", "BTC", D("1"), 1, 1)])
    assert "price alerts not evaluated" in caplog.text


def test_prices_written_by_the_feed_ingest_are_evaluated_after_they_are_stored(_nothing_sent):
    from ingest.exchange import ExchangeIngest
    from market.domain.feeds import Trade
    from market.models import PriceTick

    t = now_ms()
    store(90, t)
    a = alert("above", 100)
    exchange = ExchangeIngest("binance")
    try:
        exchange.write([Trade("BTC", D("100.5"), t + 1000)], [], t + 1000)
    finally:
        for pool in (exchange.writer, exchange.rest, exchange.control, exchange.server):
            pool.shutdown(wait=True)
    assert PriceTick.objects.filter(symbol="BTC", price=D("100.5")).exists()
    assert fired(a.id) == 1 and len(_nothing_sent) == 1


def test_a_failing_evaluation_loses_no_stored_price_of_the_poll(sandbox, settings, monkeypatch):
    from market.models import PriceTick
    from market.tasks import poll_exchange

    monkeypatch.setattr(services, "evaluate", lambda ticks: 1 / 0)
    assert poll_exchange("binance") == 4
    assert PriceTick.objects.filter(source="binance").count() == 4


def test_a_batch_with_two_prices_of_one_market_fires_and_rearms_in_their_order():
    t = now_ms()
    store(90, t)
    a = alert("above", 100, repeat=True)
    ticks = store(101, t + 1000) + store(99, t + 2000) + store(102, t + 3000)
    assert services.evaluate(ticks) == 2  # fired, armed again, fired again
    assert fired(a.id) == 2 and PriceAlert.objects.get(pk=a.id).state == "rearming"
    prices = sorted(json.loads(d.body)["price"] for d in Delivery.objects.all())
    assert prices == [101.0, 102.0]


def test_after_its_own_fire_a_process_keeps_its_index_without_reading_it_again(django_assert_max_num_queries):
    t = now_ms()
    store(90, t)
    alert("above", 100)
    alert("above", 200)
    assert services.evaluate(store(101, t + 1000)) == 1
    ticks = store(150, t + 2000)
    with django_assert_max_num_queries(0):  # the version moved by this process alone: the index stays
        assert services.evaluate(ticks) == 0


def test_an_evaluation_whose_write_fails_leaves_no_index_believing_it(monkeypatch):
    t = now_ms()
    store(90, t)
    a = alert("above", 100)
    real = services._apply
    monkeypatch.setattr(services, "_apply", lambda rounds: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        services.evaluate(store(101, t + 1000))
    monkeypatch.setattr(services, "_apply", real)
    assert ("binance", "BTC") not in services._indexes
    assert services.evaluate(store(102, t + 2000)) == 1 and fired(a.id) == 1

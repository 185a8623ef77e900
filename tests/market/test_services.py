"""Writes: ticks and candles are idempotent; candle sync is gap-free and equals the exchange."""

import time
from decimal import Decimal as D

import orjson
import pytest
from django.core.cache import cache

from core import keys
from market import documents, selectors
from market.candles import apply_tick_to_open_candles, sync_candles, upsert_candles
from market.domain.candles import aggregate
from market.domain.prices import Quote
from market.domain.timeframes import TIMEFRAMES, align
from market.exchanges.errors import ExchangeError
from market.markets import watch
from market.models import Candle, OnDemandMarket, PriceTick
from market.prices import prune_ticks, record_quotes
from market.tasks import poll_exchange, sync_exchange_candles
from market.ticks import StoredTick, from_ms
from sandbox import simulation as sim

pytestmark = pytest.mark.django_db

M, H = TIMEFRAMES["1m"], TIMEFRAMES["1h"]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_recording_the_same_poll_twice_stores_each_tick_once():
    now = now_ms()
    quotes = [Quote("BTC", D("100.5")), Quote("ETH", D("10"))]
    first = record_quotes("binance", quotes, now)
    again = record_quotes("binance", quotes, now + 10)  # same poll slot
    assert len(first) == 2 and again == []
    assert PriceTick.objects.count() == 2


def test_change_pct_is_computed_against_the_previous_tick_of_the_same_market():
    t = now_ms() - 60_000
    record_quotes("binance", [Quote("BTC", D("100"), t)], t)
    record_quotes("coinbase", [Quote("BTC", D("500"), t + 1000)], t + 1000)
    [tick] = record_quotes("binance", [Quote("BTC", D("110"), t + 2000)], t + 2000)
    assert tick.change_pct == D("10.0000")


def test_a_polled_price_without_its_own_time_older_than_the_stored_one_is_ignored():
    """A poll's price the exchange gave no time for is stamped with its poll slot: when a newer
    price is stored already (a feed's trade), it is not stored."""
    t = now_ms()
    record_quotes("kraken", [Quote("BTC", D("100"), t + 60_000)], t)
    assert record_quotes("kraken", [Quote("BTC", D("99"))], t) == []
    assert list(PriceTick.objects.values_list("price", flat=True)) == [D("100")]


def test_an_older_price_with_its_own_time_is_stored_in_its_place_once_and_is_not_the_latest():
    """At a feed's handover the poller may store its slot-stamped price before the writer stores
    a feed trade from just before it, which subscribers were already sent: that trade is stored,
    in its place in time, with its change from the price before it; the newest stays the latest."""
    slot = int(selectors.poll_interval("kraken") * 1000)
    t = now_ms() // slot * slot
    record_quotes("kraken", [Quote("BTC", D("100"), t - 5000)], t - 5000)
    [poll] = record_quotes("kraken", [Quote("BTC", D("110"))], t + 100)
    assert poll.timestamp_ms == t  # the poll's slot
    assert record_quotes("kraken", [Quote("BTC", D("105"), t - 580)], t + 200) == []  # not returned: not the newest
    assert record_quotes("kraken", [Quote("BTC", D("105"), t - 580)], t + 300) == []  # twice: stored once
    rows = PriceTick.objects.filter(source="kraken", symbol="BTC").order_by("timestamp")
    assert [(r.price, r.change_pct) for r in rows] == [(D("100"), None), (D("105"), D("5.0000")), (D("110"), D("10.0000"))]
    latest = StoredTick.from_cache(cache.get(keys.latest("kraken", "BTC")))
    assert (latest.price, latest.timestamp_ms) == (D("110"), t)


def test_upserting_candles_twice_keeps_one_row_each_with_the_latest_values():
    c = sim.candle("BTC", "1h", align(now_ms(), "1h") - 5 * H)
    assert upsert_candles("binance", "BTC", "1h", [c]) == 1
    changed = c.__class__(c.open_time, c.open, c.high + 1, c.low, c.close, c.volume, True)
    upsert_candles("binance", "BTC", "1h", [changed])
    row = Candle.objects.get()
    assert row.high == c.high + 1


def test_the_open_candles_take_every_tick_of_one_call_and_nothing_else():
    """apply_tick_to_open_candles reads and writes once for all the ticks: each open candle gets
    the highest and lowest of its market's prices and the newest as its close; another market's
    candle and a closed candle stay as they were."""
    t = align(now_ms(), "1h") + 1000
    open_1m, open_1h = align(t, "1m"), align(t, "1h")
    base = (D("100"), D("110"), D("90"), D("100"), D("5"))
    for symbol, timeframe, start, closed in [("BTC", "1m", open_1m, False), ("BTC", "1h", open_1h, False),
                                             ("ETH", "1m", open_1m, False), ("BTC", "1m", open_1m - M, True)]:
        upsert_candles("binance", symbol, timeframe, [sim.Candle(start, *base, closed)])
    ticks = [StoredTick("binance", "BTC", D("120"), t + 10, t + 10), StoredTick("binance", "BTC", D("80"), t + 30, t + 30),
             StoredTick("binance", "BTC", D("95"), t + 20, t + 20)]
    changed = apply_tick_to_open_candles(ticks, ("1m", "1h"))
    assert sorted((symbol, tf) for _s, symbol, tf, _c in changed) == [("BTC", "1h"), ("BTC", "1m")]
    for timeframe, start in (("1m", open_1m), ("1h", open_1h)):
        row = Candle.objects.get(source="binance", symbol="BTC", timeframe=timeframe, open_time=start)
        assert (row.open, row.high, row.low, row.close, row.volume) == (D("100"), D("120"), D("80"), D("80"), D("5"))
    eth = Candle.objects.get(symbol="ETH")
    closed = Candle.objects.get(symbol="BTC", timeframe="1m", closed=True)
    assert (eth.high, eth.low, eth.close) == (closed.high, closed.low, closed.close) == (D("110"), D("90"), D("100"))


def test_a_served_price_document_never_goes_back_in_time():
    """The feed's live price and the stored one write the same document; the newer trade wins
    whoever writes last."""
    t = now_ms()
    documents.serve_live([StoredTick("binance", "BTC", D("102"), t, t)])
    documents.store_prices([StoredTick("binance", "BTC", D("101"), t - 500, t)])  # older: stays unserved
    assert orjson.loads(cache._cache.get_client().get(documents.price_key("binance", "BTC")))["price"] == 102
    documents.store_prices([StoredTick("binance", "BTC", D("103"), t + 500, t + 500)])
    assert orjson.loads(cache._cache.get_client().get(documents.price_key("binance", "BTC")))["price"] == 103


def test_poll_task_stores_ticks_for_tracked_symbols_and_runs_idempotently(sandbox, settings):
    settings.MARKET_BROADCASTER = "tests.market.test_services.collect"
    collected.clear()
    assert poll_exchange("binance") == 4
    assert poll_exchange("binance") in (0, 4)  # the same 5 s slot stores nothing new
    assert PriceTick.objects.filter(source="binance").values("symbol").distinct().count() == 4
    assert sorted(t.symbol for t in collected[0]["ticks"]) == ["ADA", "BTC", "ETH", "SOL"]


def test_one_exchange_failing_does_not_stop_the_others(sandbox, settings):
    from tests.conftest import set_fault

    settings.MARKET_BROADCASTER = "tests.market.test_services.collect"
    set_fault(sandbox, "binance", mode="error", status=500)
    assert poll_exchange("binance") == 0
    assert poll_exchange("coinbase") == 4


def test_backfill_then_sync_is_gap_free_and_equal_to_the_exchange(sandbox, settings):
    settings.BACKFILL_CANDLES = 120
    now = now_ms()
    sync_candles("binance", ["ETH"], now, full=True)
    minutes = list(Candle.objects.filter(source="binance", symbol="ETH", timeframe="1m").order_by("open_time"))
    assert len(minutes) == 120
    assert all(b.open_time - a.open_time == M for a, b in zip(minutes, minutes[1:]))
    hours = list(Candle.objects.filter(source="binance", symbol="ETH", timeframe="1h").order_by("open_time"))
    # Every closed hour within the minute window equals the aggregate of its 60 minutes.
    for hour in hours:
        parts = [m for m in minutes if hour.open_time <= m.open_time < hour.open_time + H]
        if len(parts) == 60 and hour.closed:
            agg = aggregate(parts, "1h", now)[0]
            assert (agg.open, agg.high, agg.low, agg.close) == (hour.open, hour.high, hour.low, hour.close)
    assert [c.closed for c in minutes][-1] is False and all(c.closed for c in minutes[:-1])


def test_a_hole_in_stored_candles_is_found_and_filled_by_the_full_sync(sandbox, settings):
    settings.BACKFILL_CANDLES = 60
    now = now_ms()
    sync_candles("coinbase", ["BTC"], now, full=True)
    qs = Candle.objects.filter(source="coinbase", symbol="BTC", timeframe="1m")
    assert qs.count() == 60
    victims = list(qs.order_by("open_time").values_list("open_time", flat=True)[10:20])
    qs.filter(open_time__in=victims).delete()
    sync_candles("coinbase", ["BTC"], now + 1000, full=True)
    assert set(victims) <= set(qs.values_list("open_time", flat=True))


def test_the_candle_task_backfills_every_timeframe(sandbox, settings):
    settings.BACKFILL_CANDLES = 30
    settings.MARKET_BROADCASTER = "tests.market.test_services.collect"
    sync_exchange_candles("binance", True)
    for tf in TIMEFRAMES:
        assert Candle.objects.filter(source="binance", symbol="BTC", timeframe=tf).count() == 30, tf


def test_several_prices_of_one_market_in_one_batch_are_stored_in_time_order_each_against_the_one_before():
    """A feed's batch may hold several prices per market (the writer caught up after a wait): all
    are stored, oldest first, each change_pct from the price before it; one older than what is
    stored is stored in its place, not returned as a new price."""
    t = now_ms()
    record_quotes("kraken", [Quote("ETH", D("100"), t - 3000)], t - 3000)
    stored = record_quotes("kraken", [Quote("ETH", D("110"), t - 1000), Quote("ETH", D("99"), t - 4000),
                                               Quote("ETH", D("121"), t), Quote("ETH", D("105"), t - 2000)], t)
    assert [(s.timestamp_ms, s.change_pct) for s in stored] == [(t - 2000, D("5")), (t - 1000, D("4.7619")), (t, D("10"))]
    rows = PriceTick.objects.filter(source="kraken", symbol="ETH").order_by("timestamp")
    assert [r.price for r in rows] == [D("99"), D("100"), D("105"), D("110"), D("121")]


def test_pruning_removes_only_ticks_older_than_the_retention():
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("1"), t - 40 * 86_400_000)], t - 40 * 86_400_000)
    record_quotes("binance", [Quote("BTC", D("2"), t)], t)
    assert prune_ticks(30) == 1
    assert list(PriceTick.objects.values_list("price", flat=True)) == [D("2")]


collected: list[dict] = []


def collect(ticks=(), candles=()):
    collected.append({"ticks": list(ticks), "candles": list(candles)})


def test_watching_a_tracked_market_gives_its_newest_price_and_changes_nothing():
    record_quotes("binance", [Quote("BTC", D("100"))], now_ms())
    tracked, tick = watch("binance", "BTC")
    assert tracked is True and tick.price == D("100")
    assert not OnDemandMarket.objects.exists()


def test_watching_an_untracked_listed_market_polls_it_on_demand(sandbox):
    tracked, tick = watch("kraken", "ATOM")
    assert tracked is False and tick is None
    assert OnDemandMarket.objects.filter(source="kraken", symbol="ATOM").count() == 1


def test_watching_a_symbol_the_exchange_does_not_list_is_a_404_and_changes_nothing(sandbox):
    with pytest.raises(ExchangeError) as raised:
        watch("binance", "NOPE")
    assert raised.value.status == 404 and "Symbol not found: NOPE" in str(raised.value)
    assert not OnDemandMarket.objects.exists()


def test_a_long_alert_window_is_read_as_evenly_spaced_prices_not_row_by_row():
    """price_points: the reference price before the window, then the window's prices oldest
    first; a window holding thousands of ticks comes back as at most `points` of them."""
    from market import selectors

    now = now_ms()
    start = now - 3_000_000
    PriceTick.objects.bulk_create([
        PriceTick(source="binance", symbol="BTC", price=D(100 + i % 7), timestamp=from_ms(start + i * 1000),
                  received_at=from_ms(start + i * 1000)) for i in range(3000)])
    dense = list(selectors.price_points("binance", "BTC", start + 500_500, points=120))
    assert dense[0][0] == start + 500_000  # the newest at or before the window's start
    assert 100 <= len(dense) <= 121 and [t for t, _ in dense] == sorted({t for t, _ in dense})
    assert dense[-1][0] == start + 2_999_000  # up to the newest stored
    sparse = list(selectors.price_points("binance", "BTC", start + 2_900_500, points=120))  # 99 ticks: all of them
    assert [t for t, _ in sparse] == [start + i * 1000 for i in range(2900, 3000)]

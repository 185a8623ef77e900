"""The ticks' table on PostgreSQL is partitioned by week (market.partitions, migration 0007): inserts
land in their week's partition or the DEFAULT one, retention drops whole weeks, and every write and
read of ticks answers as on one table. On SQLite nothing changes; CI's PostgreSQL pass runs the rest."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from market import partitions, selectors
from market.domain.prices import Quote
from market.models import PriceTick
from market.prices import prune_ticks, record_quotes
from market.ticks import from_ms, to_ms

pytestmark = pytest.mark.django_db
postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="tick partitions exist on PostgreSQL only (CI's PostgreSQL pass runs these)")
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def today():
    return datetime.now(UTC).date()


def partition_of(tick_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM market_pricetick WHERE id = %s", [tick_id])
        return cursor.fetchone()[0]


def names() -> set[str]:
    return {p.name for p in partitions.partitions()}


def tick(source: str, symbol: str, price: str, at_ms: int) -> PriceTick:
    return PriceTick.objects.create(source=source, symbol=symbol, price=D(price), timestamp=from_ms(at_ms), received_at=from_ms(at_ms))


def test_on_sqlite_the_ticks_are_one_table_pruned_by_delete():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite pass checks SQLite")
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("1"), t - 31 * DAY_MS)], t - 31 * DAY_MS)
    record_quotes("binance", [Quote("BTC", D("2"), t)], t)
    assert partitions.in_use() is False and partitions.ensure() == []
    assert prune_ticks(30) == 1
    assert list(PriceTick.objects.values_list("price", flat=True)) == [D("2")]
    out = StringIO()
    call_command("tick_partitions", stdout=out)
    assert "not partitioned" in out.getvalue()


@postgresql
def test_after_migrate_the_table_is_partitioned_by_week_with_a_week_ahead_and_a_default():
    assert partitions.in_use()
    expected = {partitions.name_of(today() + timedelta(days=n)) for n in range(partitions.AHEAD_DAYS + 1)}
    assert expected | {partitions.DEFAULT} <= names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef('market_pricetick'::regclass)")
        assert cursor.fetchone()[0] == 'RANGE ("timestamp")'
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [partitions.name_of(today())])
        suffix = f"_p{partitions.start_of(today()):%Y%m%d}"
        assert partitions.start_of(today()).weekday() == 0  # a Monday
        assert {n.removesuffix(suffix) for n, in cursor.fetchall()} == {
            "market_pricetick_pkey", "price_tick_unique", "tick_market_time", "tick_time_id", "tick_symbol_time", "tick_source_received"}


@postgresql
def test_a_tick_lands_in_its_weeks_partition_and_a_far_one_in_the_default():
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("100"), t)], t)
    here = PriceTick.objects.get(source="binance", symbol="BTC")
    assert partition_of(here.id) == partitions.name_of(from_ms(t).date())
    future = tick("binance", "ETH", "1", t + 400 * DAY_MS)  # a clock far ahead
    past = tick("binance", "ETH", "2", to_ms(datetime(2001, 1, 1, tzinfo=UTC)))  # history from long ago
    assert partition_of(future.id) == partition_of(past.id) == partitions.DEFAULT


@postgresql
def test_creating_a_weeks_partition_moves_that_weeks_ticks_out_of_the_default():
    t = now_ms()
    ahead = tick("kraken", "SOL", "150", t + 30 * DAY_MS)  # past the weeks made ahead
    assert partition_of(ahead.id) == partitions.DEFAULT
    created = partitions.ensure(today=today() + timedelta(days=25))
    assert partitions.name_of(from_ms(t + 30 * DAY_MS).date()) in created
    assert partition_of(ahead.id) == partitions.name_of(from_ms(t + 30 * DAY_MS).date())
    assert PriceTick.objects.get(id=ahead.id).price == D("150")


@postgresql
def test_pruning_drops_whole_weeks_past_the_retention_deletes_old_default_rows_and_keeps_the_rest():
    t = now_ms()
    partitions.ensure(since=today() - timedelta(days=50))
    old = [tick("binance", "BTC", str(n), t - n * DAY_MS) for n in (50, 45, 38)]  # weeks wholly past 30 days
    ancient = tick("binance", "BTC", "1000", to_ms(datetime(2001, 1, 1, tzinfo=UTC)))  # in the DEFAULT
    kept = [tick("binance", "BTC", str(n), t - n * DAY_MS) for n in (29, 1, 0)]
    far_ahead = tick("binance", "BTC", "-1", t + 400 * DAY_MS)  # in the DEFAULT, not old
    assert prune_ticks(30) == len(old) + 1
    assert sorted(PriceTick.objects.values_list("id", flat=True)) == sorted([k.id for k in kept] + [far_ahead.id])
    cutoff = (datetime.now(UTC) - timedelta(days=30)).date()
    days = [p.day for p in partitions.partitions() if p.day]
    assert all(day + timedelta(days=7) > cutoff for day in days)  # no week wholly past the retention is left
    assert partitions.name_of(from_ms(t - 29 * DAY_MS).date()) in names()
    assert partitions.name_of(from_ms(t - 50 * DAY_MS).date()) not in names()
    assert partitions.name_of(today() + timedelta(days=partitions.AHEAD_DAYS)) in names()
    assert ancient.id not in set(PriceTick.objects.values_list("id", flat=True))


@postgresql
def test_pruning_makes_sure_of_the_partitions_ahead_and_so_does_migrate():
    last = partitions.name_of(today() + timedelta(days=partitions.AHEAD_DAYS))
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{last}"')
    prune_ticks(30)
    assert last in names()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{last}"')
    partitions.ensure_after_migrate()
    assert last in names()


@postgresql
def test_a_duplicate_tick_is_still_skipped_by_the_write_and_refused_by_the_table():
    t = now_ms()
    assert len(record_quotes("coinbase", [Quote("BTC", D("100"), t)], t)) == 1
    cache.clear()
    assert record_quotes("coinbase", [Quote("BTC", D("100"), t)], t + 10) == []
    # Past the write's own check, the unique constraint (it holds the partition key) ignores or refuses it.
    PriceTick.objects.bulk_create([PriceTick(source="coinbase", symbol="BTC", price=D("1"), timestamp=from_ms(t),
                                             received_at=from_ms(t))], ignore_conflicts=True)
    assert PriceTick.objects.filter(source="coinbase", symbol="BTC").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        tick("coinbase", "BTC", "2", t)
    far = t + 400 * DAY_MS  # the DEFAULT partition holds the same constraint
    tick("coinbase", "BTC", "3", far)
    with pytest.raises(IntegrityError), transaction.atomic():
        tick("coinbase", "BTC", "4", far)


@postgresql
def test_the_newest_price_and_the_history_read_the_same_across_partitions():
    t = now_ms()
    partitions.ensure(since=today() - timedelta(days=20))
    moments = [t - n * 3 * DAY_MS for n in range(12)]  # 33 days: several weeks' partitions and the DEFAULT
    for i, moment in enumerate(reversed(moments)):
        tick("binance", "BTC", str(100 + i), moment)
        tick("kraken", "BTC", str(900 + i), moment)
    cache.clear()
    newest = selectors.latest_tick("binance", "BTC")
    assert (newest.price, newest.timestamp_ms) == (D("111"), t)
    history = selectors.history("binance", "BTC", 5)
    assert [h.timestamp_ms for h in history] == moments[:5]
    assert [h.price for h in history] == [D(str(111 - n)) for n in range(5)]
    assert len(selectors.history("binance", "BTC", 50)) == 12


@postgresql
def test_a_tick_is_found_shown_and_deleted_by_its_id_alone(client):
    t = now_ms()
    one = tick("okx", "BTC", "42", t)
    assert PriceTick.objects.get(pk=one.pk).price == D("42")
    User.objects.create_superuser("operator", "op@example.com", "a-long-operator-password")
    client.login(username="operator", password="a-long-operator-password")
    assert client.get(f"/admin/market/pricetick/{one.pk}/change/").status_code == 200
    PriceTick.objects.filter(pk=one.pk).delete()
    assert not PriceTick.objects.filter(pk=one.pk).exists()


@postgresql
def test_the_command_lists_the_partitions_with_their_row_estimates():
    out = StringIO()
    call_command("tick_partitions", stdout=out)
    text = out.getvalue()
    assert partitions.name_of(today()) in text and partitions.DEFAULT in text and "rows (est.)" in text


@postgresql
def test_health_counts_the_partitions_in_the_stored_size(client):
    """The parent of a partitioned table holds nothing itself: /health adds its partitions up."""
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("1"), t)], t)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('market_pricetick')")
        parent_alone = cursor.fetchone()[0]
    size = client.get("/health").json()["log_file_size_bytes"]
    assert size > parent_alone and size >= 8192

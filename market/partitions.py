"""The ticks' table on PostgreSQL: partitioned by week of the exchange's time (`timestamp`, UTC).

One partition a week, `market_pricetick_pYYYYMMDD` holding [that Monday 00:00, the next Monday
00:00) UTC, created AHEAD_DAYS ahead, and `market_pricetick_default` catching whatever has no
partition (history from before the partitions, a clock far ahead, a week whose partition was not
created in time), so an insert never fails. Old ticks go a whole week at a time: a week whose every
tick is older than the retention is dropped (DROP TABLE: no dead rows, no vacuum); the DEFAULT
partition's old rows are deleted as before. So a tick is kept at least TICK_RETENTION_DAYS and at
most six days more.

A week, not a day: the reads the partitions cannot narrow (a market's newest price, its history:
no bound on `timestamp`) visit every partition, and PostgreSQL plans each partition's indexes on
every query. With the default retention (30 days) days would be ~38 partitions, and planning alone
took 1.4 ms of a 50-tick history read measured on 2 cores, weeks ~6 partitions and 0.28 ms, one
table 0.07 ms (bench/results/storage.md has the whole comparison). The price is storage: up to six
days kept past the retention, about 10 % more on average at 30 days.

Everything here acts only when the table is partitioned (migration 0007 on PostgreSQL); SQLite keeps
one table pruned by DELETE (market.prices.prune_ticks). Identifiers and bounds are built from dates
only, never from input.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction

log = logging.getLogger(__name__)

TABLE = "market_pricetick"
DEFAULT = f"{TABLE}_default"
SPAN_DAYS = 7  # days a partition holds, from a Monday
AHEAD_DAYS = 7
LOCK_TIMEOUT = "5s"  # creating or dropping a partition locks the whole table: never queue the writes for long
_DAY = re.compile(rf"^{TABLE}_p(\d{{8}})$")


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # its first day; None: the DEFAULT partition (or one this module did not create)
    rows: int  # PostgreSQL's estimate (pg_class.reltuples; -1 before the first ANALYZE)
    bytes: int


def start_of(day: date) -> date:
    """The first day of the partition holding `day` (a Monday when SPAN_DAYS is 7)."""
    return day - timedelta(days=(day.toordinal() - 1) % SPAN_DAYS)  # day 1 (0001-01-01) was a Monday


def name_of(day: date) -> str:
    """The name of the partition holding `day`."""
    return f"{TABLE}_p{start_of(day):%Y%m%d}"


def day_of(name: str) -> date | None:
    match = _DAY.match(name)
    return datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def _bound(day: date) -> str:
    """A partition bound as an SQL literal, from a date alone (digits and dashes)."""
    return f"'{day.isoformat()} 00:00:00+00'"


def _q(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def in_use(using: str = DEFAULT_DB_ALIAS) -> bool:
    """The ticks' table is a partitioned table (PostgreSQL after migration 0007)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions(using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """The table's partitions, days in order, then the others (the DEFAULT)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)", [TABLE])
        rows = [Partition(name, day_of(name), int(tuples), int(size)) for name, tuples, size in cursor.fetchall()]
    return sorted(rows, key=lambda p: (p.day is None, p.day or date.min, p.name))


def _name_indexes_after_parents(cursor, connection, table: str, suffix: str) -> None:
    """A partition's indexes named after the parent's (tick_market_time_p20260105), not PostgreSQL's
    generated names: plans and \\d read as the model's indexes."""
    cursor.execute(
        "SELECT c.relname, p.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class p ON p.oid = h.inhparent "
        "WHERE x.indrelid = to_regclass(%s)", [table])
    for child, parent in cursor.fetchall():
        wanted = f"{parent}_{suffix}"
        if child != wanted and len(wanted) <= 63:
            cursor.execute(f"ALTER INDEX {_q(connection, child)} RENAME TO {_q(connection, wanted)}")


def name_all_indexes(cursor, connection) -> None:
    """Every partition's indexes named after the parent's (after indexes were built on the parent)."""
    cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)", [TABLE])
    for (name,) in cursor.fetchall():
        day = day_of(name)
        if day is not None or name == DEFAULT:
            _name_indexes_after_parents(cursor, connection, name, f"p{day:%Y%m%d}" if day else "default")


def create_default(cursor, connection) -> None:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {_q(connection, DEFAULT)} PARTITION OF {_q(connection, TABLE)} DEFAULT")
    _name_indexes_after_parents(cursor, connection, DEFAULT, "default")


def create_partition(cursor, connection, day: date) -> None:
    """The partition holding `day`. Its ticks already in the DEFAULT partition move into it
    (PostgreSQL refuses a partition whose rows the DEFAULT holds)."""
    day = start_of(day)
    table, default, name = _q(connection, TABLE), _q(connection, DEFAULT), _q(connection, name_of(day))
    start, end = _bound(day), _bound(day + timedelta(days=SPAN_DAYS))
    # The lock CREATE ... PARTITION OF takes anyway, taken first: no tick of the week can reach the
    # DEFAULT partition between the look below and the CREATE.
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT])
    stray = False
    if cursor.fetchone()[0]:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE timestamp >= {start} AND timestamp < {end})")
        stray = cursor.fetchone()[0]
    if stray:
        cursor.execute(f"CREATE TEMPORARY TABLE pricetick_moving ON COMMIT DROP AS WITH moved AS ("
                       f"DELETE FROM {default} WHERE timestamp >= {start} AND timestamp < {end} RETURNING *) "
                       "SELECT * FROM moved")
    cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({start}) TO ({end})")
    _name_indexes_after_parents(cursor, connection, name_of(day), f"p{day:%Y%m%d}")
    if stray:
        cursor.execute(f"INSERT INTO {table} SELECT * FROM pricetick_moving")
        cursor.execute("DROP TABLE pricetick_moving")


def _locked_briefly(connection, work) -> bool:
    """Run `work(cursor)` in its own transaction, waiting at most LOCK_TIMEOUT for the table's lock
    (a long read holds it off); False when it could not get it (the next run tries again)."""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            work(cursor)
        return True
    except OperationalError as exc:
        cause = exc.__cause__
        if (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) != "55P03":  # lock_not_available
            raise
        log.warning("tick partitions: %s busy, left for the next run", TABLE)
        return False


def ensure(today: date | None = None, since: date | None = None, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Partitions holding every day from `since` (default: today) to today + AHEAD_DAYS, and the
    DEFAULT; returns the names created. Does nothing unless the table is partitioned."""
    if not in_use(using):
        return []
    connection = connections[using]
    today = today or datetime.now(UTC).date()
    existing = {p.name for p in partitions(using)}
    created = []
    if DEFAULT not in existing and _locked_briefly(connection, lambda c: create_default(c, connection)):
        created.append(DEFAULT)
    day = start_of(since or today)
    while day <= today + timedelta(days=AHEAD_DAYS):
        if name_of(day) not in existing and _locked_briefly(connection, lambda c, d=day: create_partition(c, connection, d)):
            created.append(name_of(day))
        day += timedelta(days=SPAN_DAYS)
    return created


def prune(cutoff: datetime, using: str = DEFAULT_DB_ALIAS) -> int:
    """Retention on the partitioned table: weeks whose every tick is older than `cutoff` dropped,
    the DEFAULT partition's older rows deleted, the partitions ahead made sure of. Returns the
    number of ticks removed."""
    connection = connections[using]
    ensure(using=using)
    removed = 0
    for partition in partitions(using):
        if partition.day is None or partition.day + timedelta(days=SPAN_DAYS) > cutoff.astimezone(UTC).date():
            continue
        name = _q(connection, partition.name)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {name}")
            count = cursor.fetchone()[0]
        if _locked_briefly(connection, lambda c, n=name: c.execute(f"DROP TABLE {n}")):
            removed += count
    if any(p.name == DEFAULT for p in partitions(using)):
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_q(connection, DEFAULT)} WHERE timestamp < %s", [cutoff])
            removed += cursor.rowcount
    return removed


def ensure_after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate: every migrate (a deploy) makes sure of the partitions ahead."""
    ensure(using=using)

"""On PostgreSQL, market_pricetick becomes a table partitioned by week of `timestamp` (see
market.partitions): the rows move into it, ids go on from the same number, the indexes and the
unique constraint are built again on the parent, so every partition has them. The primary key
becomes (id, timestamp): PostgreSQL wants the partition key in every unique index; `id` stays
unique in practice (one identity sequence), and Django keeps using it as the key.

It runs in one transaction, holding the table locked while the rows move (89 s for 7.9 million
ticks on two cores, bench/results/storage.md): run it when the ingest may pause.
Reversible: back to one table with `id` as the key. SQLite: nothing to do."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations

COLUMNS = '"id", "source", "symbol", "price", "timestamp", "received_at", "change_pct"'
TABLE = "market_pricetick"
INDEXES = [
    'CREATE INDEX "tick_market_time" ON "market_pricetick" ("source", "symbol", "timestamp" DESC)',
    'CREATE INDEX "tick_time_id" ON "market_pricetick" ("timestamp" DESC, "id" DESC)',
    'CREATE INDEX "tick_symbol_time" ON "market_pricetick" ("symbol", "timestamp" DESC)',
    'CREATE INDEX "tick_source_received" ON "market_pricetick" ("source", "received_at")',
]


def _rebuild(schema_editor, partitioned: bool) -> None:
    """Build market_pricetick again, partitioned or not, with its rows, ids and indexes."""
    from market import partitions

    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    old = f"{TABLE}_old"
    with connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        old_sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")
        last_value, is_called = cursor.fetchone()
        # Free the names (an index's and a sequence's are the schema's) for the new table.
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{old}"')
        cursor.execute(f'ALTER SEQUENCE {old_sequence} RENAME TO "{old}_id_seq"')
        tail = ' PARTITION BY RANGE ("timestamp")' if partitioned else ""
        cursor.execute(f'CREATE TABLE "{TABLE}" (LIKE "{old}" INCLUDING IDENTITY INCLUDING DEFAULTS){tail}')
        if partitioned:
            partitions.create_default(cursor, connection)
            today = datetime.now(UTC).date()
            cursor.execute(f'SELECT min("timestamp") FROM "{old}"')
            oldest = cursor.fetchone()[0]
            # Weeks within the retention get a partition; older rows go to DEFAULT, to be pruned.
            since = today - timedelta(days=getattr(settings, "TICK_RETENTION_DAYS", 30))
            day = max(since, oldest.astimezone(UTC).date()) if oldest else today
            day = partitions.start_of(day)
            while day <= today + timedelta(days=partitions.AHEAD_DAYS):
                partitions.create_partition(cursor, connection, day)
                day += timedelta(days=partitions.SPAN_DAYS)
        cursor.execute(f'INSERT INTO "{TABLE}" ({COLUMNS}) SELECT {COLUMNS} FROM "{old}"')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        cursor.execute(f"SELECT setval('{cursor.fetchone()[0]}', %s, %s)", [last_value, is_called])
        cursor.execute(f'DROP TABLE "{old}"')
        key = '"id", "timestamp"' if partitioned else '"id"'
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ({key})')
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "price_tick_unique" UNIQUE ("source", "symbol", "timestamp")')
        for sql in INDEXES:
            cursor.execute(sql)
        if partitioned:
            partitions.name_all_indexes(cursor, connection)
        cursor.execute(f'ANALYZE "{TABLE}"')


def partition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):

    dependencies = [
        ('market', '0006_sources_of_any_exchange'),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]

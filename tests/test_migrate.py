"""Hosts that start together on one PostgreSQL migrate in turn (cryptosite's migrate command holds an
advisory lock): both succeed, and the schema is made once. Migration 0007 (ticks partitioned by week)
goes back and forth with its rows."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from cryptosite.stack import BASE_DIR

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the race is PostgreSQL's (CI's pass)")


def test_two_hosts_migrating_one_fresh_database_at_once_both_succeed():
    settings = connection.settings_dict
    server = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS cryptosite_migrate_race")
        admin.execute("CREATE DATABASE cryptosite_migrate_race")
    try:
        env = {**os.environ, "DATABASE_URL": f"{server}/cryptosite_migrate_race"}
        hosts = [subprocess.Popen([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [host.communicate(timeout=300)[0] for host in hosts]
        assert [host.returncode for host in hosts] == [0, 0], outputs
        # One of them applied the migrations; the other found nothing left to do.
        assert sum("No migrations to apply" in out for out in outputs) == 1, outputs
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS cryptosite_migrate_race (FORCE)")


def test_the_weekly_partitioning_migrates_back_and_forth_keeping_every_tick_and_id():
    """Migration 0007 reversed (market 0006): one table keyed by id again, the same rows and ids, new
    ids go on after them; then forward again, partitioned, with the rows still there."""
    settings = connection.settings_dict
    server = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
    name = "cryptosite_migrate_back"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    env = {**os.environ, "DATABASE_URL": f"{server}/{name}"}

    def migrate(*target: str) -> None:
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", *target], cwd=BASE_DIR, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr

    def table() -> tuple[str, list[tuple], str]:
        with psycopg.connect(f"{server}/{name}") as db:
            kind = db.execute("SELECT relkind FROM pg_class WHERE relname = 'market_pricetick'").fetchone()[0]
            rows = db.execute("SELECT id, symbol, price, timestamp FROM market_pricetick ORDER BY id").fetchall()
            key = db.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                             "WHERE conname = 'market_pricetick_pkey'").fetchone()[0]
        return kind, rows, key

    def insert(symbol: str, days_ago: int) -> None:
        with psycopg.connect(f"{server}/{name}") as db:
            db.execute("INSERT INTO market_pricetick (source, symbol, price, timestamp, received_at) "
                       "VALUES ('binance', %s, 100.5, now() - make_interval(days => %s), now())", [symbol, days_ago])

    try:
        migrate()
        for symbol, days_ago in (("BTC", 0), ("ETH", 3), ("SOL", 20)):
            insert(symbol, days_ago)
        kind, before, key = table()
        assert kind == "p" and key == "PRIMARY KEY (id, \"timestamp\")" and len(before) == 3

        migrate("market", "0006")
        kind, after, key = table()
        assert kind == "r" and key == "PRIMARY KEY (id)" and after == before
        insert("ADA", 1)
        assert table()[1][-1][0] > before[-1][0]  # the identity goes on after the rows moved

        migrate()
        kind, again, key = table()
        assert kind == "p" and key == "PRIMARY KEY (id, \"timestamp\")" and again[:3] == before and len(again) == 4
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} (FORCE)")

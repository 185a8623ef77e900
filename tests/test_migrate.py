"""Hosts that start together on one PostgreSQL migrate in turn (cryptosite's migrate command holds an
advisory lock): both succeed, and the schema is made once."""

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

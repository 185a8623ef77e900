"""/health is not rate limited, so a flood of it must cost next to nothing: no Redis connection
opened per call, the dependencies checked at most once per HEALTH_CACHE_SECONDS, and the prices'
freshness read from Redis (or, without it, one index lookup), never a scan of the ticks."""

import time
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext

from core.cache import redis_client
from market.domain.prices import Quote
from market.models import PriceTick
from market.prices import record_quotes

pytestmark = pytest.mark.django_db

BURST = 20


def redis_stats() -> dict:
    info = redis_client().info("all")
    return {"connections": info["total_connections_received"], "pings": info.get("cmdstat_ping", {}).get("calls", 0)}


def seed_prices() -> None:
    now = int(time.time() * 1000)
    for source in ("binance", "coinbase"):
        record_quotes(source, [Quote("BTC", Decimal("50000"))], now)


def test_a_burst_of_health_calls_checked_at_every_call_opens_no_redis_connection_per_call(client, settings):
    settings.HEALTH_CACHE_SECONDS = 0  # every call checks: the connections must come from a pool
    assert client.get("/health").status_code == 200  # the pools are made here
    before = redis_stats()
    for _ in range(BURST):
        assert client.get("/health").json()["checks"] == {"database": "ok", "channel_layer": "ok", "broker": "ok"}
    after = redis_stats()
    assert after["pings"] - before["pings"] == 2 * BURST  # checked every time, over pooled connections
    assert after["connections"] - before["connections"] <= 2


def test_a_burst_of_health_calls_checks_the_dependencies_once_per_cache_period(client, settings):
    settings.HEALTH_CACHE_SECONDS = 60  # the whole burst falls in one period
    seed_prices()
    client.get("/health")
    before = redis_stats()
    with CaptureQueriesContext(connection) as queries:
        bodies = [client.get("/health").json() for _ in range(BURST)]
    assert redis_stats()["pings"] == before["pings"]
    assert not [q["sql"] for q in queries.captured_queries if "SELECT 1" in q["sql"]]
    assert all(body["status"] == "ok" and body["checks"]["database"] == "ok" for body in bodies)


def test_the_freshness_of_each_exchange_is_read_without_querying_its_ticks(client, settings):
    settings.HEALTH_CACHE_SECONDS = 0
    seed_prices()
    with CaptureQueriesContext(connection) as queries:
        bodies = [client.get("/health").json() for _ in range(BURST)]
    # No read of the ticks' rows (PostgreSQL's storage size, pg_total_relation_size, reads only its catalog).
    assert not [q["sql"] for q in queries.captured_queries if 'FROM "market_pricetick"' in q["sql"]]
    for source in ("binance", "coinbase"):
        newest = PriceTick.objects.filter(source=source).aggregate(m=Max("received_at"))["m"]
        assert all(body["sources"][source]["last_tick_utc"] == newest.isoformat() for body in bodies)
        assert all(body["sources"][source]["stale"] is False for body in bodies)


def test_the_freshness_asked_of_the_database_is_one_index_lookup():
    """Redis flushed or down: /health asks the database for an exchange's newest tick, and that must
    be a lookup in the (source, received_at) index, not a walk over all of the exchange's ticks."""
    with CaptureQueriesContext(connection) as captured:
        PriceTick.objects.filter(source="binance").aggregate(m=Max("received_at"))
    sql = captured.captured_queries[-1]["sql"]
    assert "MAX" in sql
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "COVERING INDEX tick_source_received" in plan, plan
        else:
            cursor.execute(f"EXPLAIN {sql}")
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index Only Scan Backward using tick_source_received" in plan, plan

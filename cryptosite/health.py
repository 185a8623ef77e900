"""What an operator's monitor reads: GET /health (the state of the database, the channel layer,
the broker and every source) and GET /metrics (Prometheus, cryptosite.metrics)."""

import hmac
import os
import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.response import Response
from rest_framework.views import APIView

from core import keys, metrics
from core.clientip import is_local
from core.errors import error_response
from market import selectors

# /health is not rate limited, so anyone may call it as often as they like: it must cost next to
# nothing. The dependency checks are kept in Redis for HEALTH_CACHE_SECONDS (shared by every
# process), each Redis is pinged over a pooled connection, and the prices' freshness comes from
# Redis (market.selectors.source_freshness).

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis_client(url: str) -> redis.Redis:
    """One client, so one connection pool, per Redis URL in this process: a check borrows a
    connection instead of opening one. One retry: a pooled connection a restarted Redis dropped
    is replaced at once, and a Redis that is down fails fast."""
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis.Redis.from_url(
                    url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 1)
                )
    return client


def _redis_ok(url: str) -> bool:
    try:
        return bool(_redis_client(url).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any driver error means the database is unusable
        return False


def _storage_bytes() -> int | None:
    """The size of the stored price log (the original reported its CSV file's size)."""
    db = settings.DATABASES["default"]
    try:
        if db["ENGINE"].endswith("sqlite3"):
            return os.path.getsize(db["NAME"])
        with connection.cursor() as cursor:
            # Partitioned (market.partitions): the parent holds nothing; its partitions add up.
            cursor.execute("SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('market_pricetick')),"
                           " pg_total_relation_size('market_pricetick'))")
            return int(cursor.fetchone()[0])
    except Exception:
        return None


def _check_dependencies() -> dict:
    db_ok = _database_ok()
    return {
        "database": db_ok,
        "channel_layer": _redis_ok(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]),
        "broker": _redis_ok(settings.CELERY_BROKER_URL),
        "storage_bytes": _storage_bytes() if db_ok else None,
    }


def dependency_checks() -> dict:
    """The database's, the channel layer's and the broker's state, and the storage's size: checked
    at most once per HEALTH_CACHE_SECONDS by all processes together, so a dependency going down (or
    coming back) shows within that. While the cache's Redis is away nothing is kept and every call
    checks again: a refused connection costs little, and the outage is never hidden."""
    try:
        checks = cache.get(keys.HEALTH_CHECKS)
    except redis.RedisError:
        return _check_dependencies()
    if checks is None:
        checks = _check_dependencies()
        if settings.HEALTH_CACHE_SECONDS > 0:
            try:
                cache.set(keys.HEALTH_CHECKS, checks, timeout=settings.HEALTH_CACHE_SECONDS)
            except redis.RedisError:
                pass
    return checks


class HealthView(APIView):
    @extend_schema(
        operation_id="health",
        responses={200: OpenApiResponse(description="ok or degraded"), 503: OpenApiResponse(description="down")},
        summary="Service health and per-source freshness",
    )
    def get(self, request):
        checks = dependency_checks()
        db_ok, layer_ok, broker_ok = checks["database"], checks["channel_layer"], checks["broker"]
        sources = {}
        if db_ok:
            try:
                sources = selectors.source_freshness()
            except DatabaseError:  # reachable but unusable (for example, not migrated)
                db_ok = False
        # Which process holds each exchange's live feed, and the scheduler (by INSTANCE_NAME).
        held = selectors.holders()
        for source, freshness in sources.items():
            freshness["holder"] = held["feeds"].get(source)
        newest = max((v["last_tick_utc"] for v in sources.values() if v["last_tick_utc"]), default=None)
        # A dependency that is down (the database, or Redis: channel layer, broker, cache) is "down"
        # and a 503, named in `checks`; prices older than three poll intervals are "degraded".
        if not (db_ok and layer_ok and broker_ok):
            status = "down"
        elif any(v["stale"] for v in sources.values()):
            status = "degraded"
        else:
            status = "ok"
        body = {
            "status": status,
            "last_updated_utc": newest,
            "log_file_size_bytes": checks["storage_bytes"] if db_ok else None,
            "checks": {
                "database": "ok" if db_ok else "down",
                "channel_layer": "ok" if layer_ok else "down",
                "broker": "ok" if broker_ok else "down",
            },
            "sources": sources,
            "scheduler": {"holder": held["scheduler"]},
            "poll_interval_seconds": settings.POLL_INTERVAL,
            "demo": settings.DEMO,
        }
        return Response(body, status=503 if status == "down" else 200)


class _ScrapeTime:
    """Read when /metrics is scraped: how old each tracked market's newest price is, and how many
    tasks wait in each of Celery's queues."""

    def collect(self):
        age = GaugeMetricFamily("cryptosite_price_age_seconds", "Age of the newest stored price", labels=["source", "symbol"])
        now = time.time() * 1000
        for tick in selectors.latest_ticks(selectors.tracked_by_source()):
            age.add_metric([tick.source, tick.symbol], max(0.0, (now - tick.received_ms) / 1000))
        yield age
        queue = GaugeMetricFamily("cryptosite_celery_queue_depth", "Tasks waiting in a Celery queue",
                                  labels=["queue"])
        try:  # over the broker's pooled client, as /health's check (no connection opened per scrape)
            prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
            client = _redis_client(settings.CELERY_BROKER_URL)
            depths = {spec["alias"]: client.llen(f"{prefix}{name}") for name, spec in settings.CELERY_TASK_QUEUES.items()}
        except Exception:  # the broker is down: /health says so; the depths are unknown
            depths = {}
        for alias, depth in depths.items():  # "tasks" (polls, sweeps), "webhooks" (deliveries)
            queue.add_metric([alias], depth)
        yield queue
        # Who holds what, deployment-wide (read from the leases in Redis): one series per held feed.
        held = GaugeMetricFamily("cryptosite_feed_holder", "1 for the ingest instance holding the exchange's live feed",
                                 labels=["exchange", "instance"])
        scheduler = GaugeMetricFamily("cryptosite_scheduler_holder", "1 for the beat instance that sends the schedule",
                                      labels=["instance"])
        holders = selectors.holders()
        for source, instance in holders["feeds"].items():
            if instance is not None:
                held.add_metric([source, instance], 1)
        if holders["scheduler"] is not None:
            scheduler.add_metric([holders["scheduler"]], 1)
        yield held
        yield scheduler


_scrape_time = CollectorRegistry(auto_describe=False)
_scrape_time.register(_ScrapeTime())


def metrics_view(request):
    """Prometheus metrics: to this machine only, or to whoever sends `Authorization: Bearer
    <METRICS_TOKEN>` when that is set (behind TRUSTED_PROXIES, the client is the proxied one)."""
    token = settings.METRICS_TOKEN
    if token:
        # As bytes: a header with characters outside ASCII is a wrong token, not a crash.
        sent = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            return error_response(401, "Metrics need the bearer token set in METRICS_TOKEN")
    elif not is_local(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR")):
        return error_response(403, "Metrics are served to this machine only; set METRICS_TOKEN to read them from elsewhere")
    body, content_type = metrics.exposition(_scrape_time)
    return HttpResponse(body, content_type=content_type)

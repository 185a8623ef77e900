"""Prometheus metrics (prometheus-client), so an operator sees the next outage before users do.

Counted where it happens: HTTP requests and their latency per endpoint and status (the ASGI edge,
which sees every request), WebSocket connections and the messages sent and clients dropped (the
consumer and the connection), poll duration and failures per exchange (the poll task). What is read
when scraped (prices' age, the queue's depth) is cryptosite.health's, which reads the apps.

Several processes serve one site (WEB_CONCURRENCY web processes, the Celery worker): with
PROMETHEUS_MULTIPROC_DIR set (`make run` and compose set it) each writes its numbers there and
/metrics adds them up; without it (tests, a single process) they live in the process.
"""

import os
import socket

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_identifier() -> str:
    """What names this process's metrics files: the host name and the pid. The pid alone collides
    across containers sharing one metrics volume (compose: each container's first process is pid 1,
    two replicas would write one file). No "_": the collector splits file names on it."""
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


if MULTIPROCESS:
    # prometheus-client's own hook for this (MultiProcessValue's process_identifier), set before any
    # metric below is made; tests/serving/test_pins.py checks the files are named so.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)

HTTP_REQUESTS = Counter("cryptosite_http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"])
HTTP_SECONDS = Histogram(
    "cryptosite_http_request_duration_seconds", "Time to answer an HTTP request", ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WS_CONNECTIONS = Gauge("cryptosite_websocket_connections", "Open WebSocket connections", multiprocess_mode="livesum")
WS_SENT = Counter("cryptosite_websocket_messages_sent_total", "Messages sent to WebSocket clients")
WS_DROPPED = Counter("cryptosite_websocket_clients_dropped_total", "WebSocket clients dropped for not reading")
POLL_SECONDS = Histogram("cryptosite_poll_duration_seconds", "Time of one price poll of an exchange", ["exchange"])
POLL_FAILURES = Counter("cryptosite_poll_failures_total", "Price polls that failed", ["exchange"])
FEED_MESSAGES = Counter("cryptosite_feed_messages_total", "Messages read from the exchanges' live feeds", ["exchange"])
FEED_BAD_MESSAGES = Counter("cryptosite_feed_bad_messages_total", "Feed messages that could not be read", ["exchange"])
FEED_RECONNECTS = Counter("cryptosite_feed_reconnects_total", "Feed connections lost or renewed", ["exchange", "reason"])
FEED_GAPS = Counter("cryptosite_feed_gaps_total", "Missed feed messages noticed (each triggers a REST resync)", ["exchange"])
FEED_LIVE = Gauge("cryptosite_feed_live", "1 while the exchange's feed is the live path", ["exchange"],
                  multiprocess_mode="livemax")

# Endpoints named as such; anything else is counted under its area, so that no client can grow the
# number of series by asking for made-up paths.
ENDPOINTS = frozenset({
    "/api/market/price", "/api/market/ohlc", "/api/market/indicators", "/api/market/orderbook",
    "/api/sentiment/analyze", "/prices", "/coins", "/history", "/health",
    "/metrics", "/api/schema/", "/docs", "/redoc",
})
AREAS = ("/admin/", "/widgets/", "/static/")


def endpoint_of(path: str) -> str:
    if path in ENDPOINTS:
        return path
    for area in AREAS:
        if path.startswith(area):
            return area
    return "other"


def observe_request(path: str, method: str, status: int, seconds: float) -> None:
    endpoint = endpoint_of(path)
    HTTP_REQUESTS.labels(endpoint, method if method in ("GET", "POST", "HEAD", "OPTIONS") else "other", str(status)).inc()
    HTTP_SECONDS.labels(endpoint).observe(seconds)


def exposition(*read_when_scraped: CollectorRegistry) -> tuple[bytes, str]:
    """The text format of every metric, added up over the processes when there are several, then
    of the registries given (numbers read at scrape time: cryptosite.health)."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return generate_latest(counted) + b"".join(generate_latest(r) for r in read_when_scraped), CONTENT_TYPE_LATEST

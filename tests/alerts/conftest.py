import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import services
from apikeys import services as key_services
from apikeys.models import ApiKey
from cryptosite.celery import app as celery_app
from tests.apikeys.conftest import served  # noqa: F401  (the application as served, for test_api)


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    """Webhooks to this machine's receiver, quick retries (six tries in about a tenth of a second),
    repeat alerts without a cooldown (tests/security tests it), and no index kept from another test."""
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.ALERT_REPEAT_COOLDOWN_SECONDS = 0
    settings.ALERT_WEBHOOK_TIMEOUT = 0.3
    settings.ALERT_RETRY_BASE_SECONDS = 0.01
    settings.ALERT_RETRY_MAX_SECONDS = 0.02
    settings.ALERT_RETRY_FOR_SECONDS = 0.1
    services.forget_indexes()
    yield
    services.forget_indexes()


@pytest.fixture(autouse=True)
def tracked(request):
    """The seeded tracked markets (a transactional test before this one emptied the tables)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    from market.markets import tracked_set_changed
    from market.models import TrackedMarket

    for source in ("binance", "coinbase"):
        for symbol in ("BTC", "ETH", "SOL", "ADA"):
            TrackedMarket.objects.get_or_create(source=source, symbol=symbol)
    tracked_set_changed()


@pytest.fixture
def eager_celery():
    """Queued tasks run at once in this process (a retry too, without its wait)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def new_key(name: str = "alice") -> tuple[ApiKey, str]:
    return key_services.create_key(name, "standard")


class Receiver:
    """A webhook receiver on loopback: answers `status` after `delay` seconds, records each request."""

    def __init__(self):
        self.status, self.delay, self.requests = 200, 0.0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()

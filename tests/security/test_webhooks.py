"""Webhooks cannot hurt the poller: receivers on loopback that misbehave (drip bytes, answer
forever, never answer) against real tries, a real Celery worker, real Redis and the real stack.

Each receiver here is a raw socket server, so that it can do what no well-behaved HTTP server does.
"""

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
import standardwebhooks
from django.core.management import call_command
from django.utils import timezone

from alerts import services
from alerts.models import Delivery, DeliveryAttempt, PriceAlert
from apikeys.models import ApiKey
from cryptosite.stack import BASE_DIR
from market.domain.alerts import AlertSpec
from market.domain.prices import Quote
from market.prices import record_quotes
from market.schedule import beat_schedule
from tests.alerts.conftest import new_key, tracked  # noqa: F401  (tracked: the seeded markets, autouse)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.ALERT_WEBHOOK_TIMEOUT = 2.0
    settings.ALERT_RETRY_BASE_SECONDS = 0.01
    settings.ALERT_RETRY_MAX_SECONDS = 0.02
    settings.ALERT_RETRY_FOR_SECONDS = 0.1
    services.forget_indexes()
    yield
    services.forget_indexes()


class Tarpit:
    """A loopback "receiver" that reads each request, then: `headers` drips its status line one byte
    every `pace` seconds, `body` sends headers then drips its body, `endless` sends a 200 and bytes
    as fast as it can for as long as the client reads, `silent` never answers, `hold` answers 200
    once `released` is set. Counts the requests open (and the most at once) and their delivery ids."""

    def __init__(self, mode: str, pace: float = 0.2):
        self.mode, self.pace, self.connections, self.open, self.most = mode, pace, 0, 0, 0
        self.deliveries: list[str] = []
        self.closed, self.released, self.lock = threading.Event(), threading.Event(), threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
        counted = True
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            if self.mode == "hold":
                while not self.released.wait(0.1) and not self.closed.is_set():
                    pass
                head = data.split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
                with self.lock:  # no longer held: counted off before the client can see the answer
                    self.deliveries += [line.split(":", 1)[1].strip() for line in head if line.startswith("webhook-id:")]
                    self.open, counted = self.open - 1, False
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif self.mode == "headers":
                self._drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 10_000_000)
            elif self.mode == "body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                self._drip(conn, b"y" * 10_000_000)
            elif self.mode == "endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                while not self.closed.is_set():
                    conn.sendall(b"x" * 65536)
            else:
                self.closed.wait()
        except OSError:
            pass  # the client hung up: what a deadline does
        finally:
            if counted:
                with self.lock:
                    self.open -= 1
            conn.close()

    def _drip(self, conn: socket.socket, data: bytes):
        for byte in data:
            if self.closed.wait(self.pace):
                return
            conn.sendall(bytes([byte]))

    def close(self):
        self.closed.set()
        self.sock.close()


@pytest.fixture
def tarpit():
    made = []

    def make(mode: str) -> Tarpit:
        made.append(Tarpit(mode))
        return made[-1]

    yield make
    for t in made:
        t.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def fire(url: str, key: ApiKey | None = None, count: int = 1, repeat: bool = False) -> list[PriceAlert]:
    """`count` alerts of `key` on BTC, set and crossed together: their deliveries are queued."""
    key = key or new_key()[0]
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("90"), t)], t)
    alerts = [services.create_alert(key, AlertSpec("binance", "BTC", "above", 100.0, repeat=repeat), url)[0] for _ in range(count)]
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("101"), t + 1000)], t + 1000)) == count
    return alerts


def try_in_thread(delivery_id: str, seconds: float = 30) -> bool:
    """One try run on a thread of its own; whether it ended within `seconds` (generous: a deadline
    of a few seconds is what is tested, an unbounded try is what fails)."""
    thread = threading.Thread(target=services.attempt_delivery, args=(delivery_id,), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


# --- a total deadline per try -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["headers", "body", "silent"])
def test_a_receiver_that_drips_its_answer_or_never_answers_is_cut_off_at_the_tries_deadline(tarpit, mode):
    """Dripped bytes (one every 0.2 s) never trip a per-read timeout of 2 s; the try's total
    deadline ends it all the same, logged as a timeout, and it is tried again later."""
    pit = tarpit(mode)
    fire(pit.url)
    delivery = Delivery.objects.get()
    assert try_in_thread(str(delivery.id)), "the try is still held by the receiver"
    [attempt] = DeliveryAttempt.objects.all()
    assert attempt.status_code is None and "Timeout" in attempt.error
    delivery.refresh_from_db()
    assert delivery.state == Delivery.PENDING and delivery.attempts == 1 and delivery.sending_until is None


def test_an_endless_answer_is_read_no_further_than_a_short_excerpt_for_the_log(tarpit):
    pit = tarpit("endless")
    fire(pit.url)
    delivery = Delivery.objects.get()
    assert try_in_thread(str(delivery.id)), "the try is still reading the answer"
    [attempt] = DeliveryAttempt.objects.all()
    assert attempt.status_code == 200 and attempt.error == ""
    assert 0 < len(attempt.response) <= 300 and set(attempt.response) == {"x"}
    assert Delivery.objects.get().state == Delivery.DELIVERED


# --- a cooldown for repeat alerts ---------------------------------------------------------------
def test_a_repeat_alert_does_not_fire_again_within_its_cooldown_of_price_time(settings, receiver):
    """A price flapping around the level: fired once, then not again until a price at least
    ALERT_REPEAT_COOLDOWN_SECONDS after the one that fired it (armed again meanwhile, it fires then)."""
    settings.ALERT_REPEAT_COOLDOWN_SECONDS = 60
    [alert] = fire(receiver.url, repeat=True)
    t = json.loads(Delivery.objects.get().body)["timestamp"]
    for step, price in enumerate([95, 105, 95, 105, 95, 105], start=1):  # every 5 s for 30 s
        services.evaluate(record_quotes("binance", [Quote("BTC", D(price), t + step * 5000)], t + step * 5000))
    assert Delivery.objects.count() == 1 and PriceAlert.objects.get(pk=alert.id).fired_count == 1
    later = t + 61_000
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("106"), later)], later)) == 1
    assert Delivery.objects.count() == 2


# --- revoked or expired keys disarm their alerts ----------------------------------------------
def test_a_key_revoked_from_the_command_line_has_its_alerts_never_fire_even_from_an_index_built_before(receiver):
    key, _ = new_key("mallory")
    services.create_alert(key, AlertSpec("binance", "BTC", "above", 100.0), receiver.url)
    t = now_ms()
    services.evaluate(record_quotes("binance", [Quote("BTC", D("90"), t)], t))  # the index is built, alert armed
    call_command("apikey", "revoke", "mallory")
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("101"), t + 1000)], t + 1000)) == 0
    services.forget_indexes()
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("102"), t + 2000)], t + 2000)) == 0
    assert not Delivery.objects.exists() and receiver.requests == []


def test_an_expired_key_has_its_alerts_never_fire(receiver):
    key, _ = new_key("temp")
    services.create_alert(key, AlertSpec("binance", "BTC", "above", 100.0), receiver.url)
    t = now_ms()
    services.evaluate(record_quotes("binance", [Quote("BTC", D("90"), t)], t))
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("101"), t + 1000)], t + 1000)) == 0
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("how", ["admin", "expiry"])
def test_a_pending_delivery_of_a_key_revoked_in_the_admin_or_expired_is_never_sent_and_given_up(receiver, admin_client, how):
    receiver.status = 500
    [alert] = fire(receiver.url, new_key("eve")[0])
    delivery_id = str(Delivery.objects.get().id)
    assert services.attempt_delivery(delivery_id) is not None  # one failed try, more to come
    if how == "admin":
        page = admin_client.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [alert.key_id]})
        assert page.status_code == 302 and ApiKey.objects.get(pk=alert.key_id).revoked
    else:
        ApiKey.objects.filter(pk=alert.key_id).update(expiry_date=timezone.now() - timedelta(seconds=1))
    assert services.attempt_delivery(delivery_id) is None
    assert len(receiver.requests) == 1
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.FAILED and "revoked or expired" in delivery.tries.order_by("number").last().error


# --- logs pruned after the retention ------------------------------------------------------------
def test_finished_deliveries_past_the_retention_are_pruned_with_their_tries_and_pending_ones_kept(settings, receiver):
    settings.ALERT_DELIVERY_LOG_DAYS = 7
    receiver.status = 500
    fire(receiver.url, count=3)
    old, recent, pending = Delivery.objects.order_by("created_at")
    for delivery in (old, recent):
        while services.attempt_delivery(str(delivery.id)) is not None:
            pass
    services.attempt_delivery(str(pending.id))
    now = timezone.now()
    Delivery.objects.filter(pk=old.pk).update(finished_at=now - timedelta(days=8))
    Delivery.objects.filter(pk=recent.pk).update(finished_at=now - timedelta(days=6))
    Delivery.objects.filter(pk=pending.pk).update(created_at=now - timedelta(days=30))
    assert services.prune_deliveries() == 1
    assert set(Delivery.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
    assert not DeliveryAttempt.objects.filter(delivery_id=old.pk).exists()
    assert beat_schedule()["prune-webhook-log"]["task"] == "alerts.tasks.prune_delivery_log"


# --- Standard Webhooks signatures -------------------------------------------------------------
def test_a_real_delivery_verifies_with_the_standard_webhooks_library_and_the_old_headers_still_verify(receiver):
    from alerts.webhooks import verify_signature

    [alert] = fire(receiver.url)
    secret = PriceAlert.objects.get(pk=alert.id).secret  # what the client was shown at creation
    assert services.attempt_delivery(str(Delivery.objects.get().id)) is None
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    payload = standardwebhooks.Webhook(secret).verify(body, headers)
    assert payload["alert_id"] == alert.id and headers["webhook-id"] == payload["delivery_id"]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "0" * 48).verify(body, headers)
    assert verify_signature(secret, headers["X-Cryptosite-Timestamp"], headers["X-Cryptosite-Signature"], body)


# --- their own queue, and a cap per key: through the whole stack ------------------------------------
@pytest.mark.e2e
def test_a_keys_held_webhooks_take_at_most_its_cap_of_webhook_threads_never_a_pollers_and_all_arrive_once(tmp_path):
    """`make demo`'s stack (polls on a worker of 2 threads, webhooks on one of 4, ALERT_WEBHOOKS_PER_KEY
    2); six alerts of one key set over HTTP, aimed at a receiver that holds every request: two are
    held at a time, prices are still polled meanwhile, and once the receiver answers, all six
    arrive, each once (the others waited their turn)."""
    from tests.e2e.conftest import RunningStack

    pit = Tarpit("hold")
    running = RunningStack(tmp_path, ALERT_WEBHOOK_TIMEOUT="600", ALERT_WEBHOOKS_PER_KEY="2", WORKER_CONCURRENCY="2",
                           WEBHOOK_WORKER_CONCURRENCY="4")
    try:
        running.wait_healthy()
        env = {**running.env, "DEMO": "1", "REDIS_URL": f"redis://127.0.0.1:{running.redis_port}/0"}
        created = subprocess.run([sys.executable, "manage.py", "apikey", "create", "holder"], cwd=BASE_DIR, env=env,
                                 capture_output=True, text=True, check=True)
        headers = {"X-API-Key": created.stdout.strip()}
        for _ in range(6):
            answer = running.http.post("/api/alerts", json={"symbol": "BTC", "above": 0.0001, "webhook_url": pit.url},
                                       headers=headers)
            assert answer.status_code == 201, answer.text
        deadline = time.monotonic() + 60
        while pit.open < 2:
            assert time.monotonic() < deadline, "the deliveries never reached the receiver"
            time.sleep(0.5)

        def newest() -> object:
            rows = running.http.get("/history", params={"symbol": "BTC", "source": "Binance", "limit": 1}).json()
            return rows[0]["timestamp"] if rows else None

        held, deadline = newest(), time.monotonic() + 60
        while newest() == held:
            assert time.monotonic() < deadline, "no price was polled while the webhooks were held"
            time.sleep(1)
        time.sleep(3)  # the waiting deliveries came back at least once meanwhile (every 1-2 s)
        assert pit.most == 2
        pit.released.set()
        deadline = time.monotonic() + 60
        while len(pit.deliveries) < 6:
            assert time.monotonic() < deadline, f"{len(pit.deliveries)} of 6 webhooks arrived"
            time.sleep(0.5)
        time.sleep(3)  # nothing more comes
        assert len(pit.deliveries) == len(set(pit.deliveries)) == 6 and pit.most == 2
    finally:
        running.stop()
        pit.close()

"""Webhook deliveries to a receiver on loopback: signed bodies, retries with every try logged,
given up after the schedule; and one price stored by the real poll task, end to end."""

import json
import time
from datetime import timedelta
from decimal import Decimal as D

import pytest

from alerts import services
from alerts.models import Delivery, DeliveryAttempt, PriceAlert
from alerts.tasks import deliver_webhook
from alerts.webhooks import retry_schedule, verify_signature
from market import selectors as market_selectors
from market.domain.alerts import AlertSpec
from market.domain.prices import Quote
from market.prices import record_quotes
from market.tasks import poll_exchange

from .conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)

TRIES = 1 + len(retry_schedule(0.01, 0.02, 0.1))  # the conftest's schedule: six


def now_ms() -> int:
    return int(time.time() * 1000)


def fire(url: str, condition="above", threshold=100.0) -> tuple[PriceAlert, str]:
    """An alert on BTC set and crossed: its delivery is queued (and run, with eager_celery)."""
    t = now_ms()
    record_quotes("binance", [Quote("BTC", D("90"), t)], t)
    alert, secret = services.create_alert(new_key()[0], AlertSpec("binance", "BTC", condition, threshold), url)
    assert services.evaluate(record_quotes("binance", [Quote("BTC", D("101.5"), t + 1000)], t + 1000)) == 1
    return alert, secret


def test_a_fired_alert_posts_a_body_whose_signature_verifies_with_its_secret(receiver, eager_celery):
    alert, secret = fire(receiver.url)
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert verify_signature(secret, headers["X-Cryptosite-Timestamp"], headers["X-Cryptosite-Signature"], body)
    assert not verify_signature("whsec_wrong", headers["X-Cryptosite-Timestamp"], headers["X-Cryptosite-Signature"], body)
    payload = json.loads(body)
    delivery = Delivery.objects.get()
    assert payload == {**payload, "alert_id": alert.id, "delivery_id": str(delivery.id), "condition": "above",
                       "threshold": 100.0, "symbol": "BTC", "source": "binance", "price": 101.5, "event": "alert.fired"}
    assert payload["timestamp"] > 0 and payload["fired_at"] > 0
    assert headers["X-Cryptosite-Delivery"] == str(delivery.id) and headers["Content-Type"] == "application/json"
    assert delivery.state == Delivery.DELIVERED and delivery.attempts == 1 and delivery.finished_at
    [attempt] = DeliveryAttempt.objects.all()
    assert attempt.status_code == 200 and attempt.error == "" and attempt.number == 1


def test_a_target_answering_500_is_retried_then_given_up_with_every_try_logged(receiver, eager_celery):
    receiver.status = 500
    fire(receiver.url)
    delivery = Delivery.objects.get()
    assert len(receiver.requests) == TRIES
    assert delivery.state == Delivery.FAILED and delivery.attempts == TRIES
    assert list(DeliveryAttempt.objects.values_list("number", "status_code")) == [(n, 500) for n in range(1, TRIES + 1)]
    # Every try carries the same delivery id and body, each freshly signed.
    assert len({r["body"] for r in receiver.requests}) == 1
    assert len({r["headers"]["X-Cryptosite-Delivery"] for r in receiver.requests}) == 1


def test_a_target_that_times_out_is_retried_then_given_up_with_every_try_logged(receiver, settings):
    receiver.delay = 1.0  # longer than ALERT_WEBHOOK_TIMEOUT (0.3 s)
    fire(receiver.url)  # queued, not run (no eager_celery): the task is run here, try by try
    [delivery] = Delivery.objects.all()
    waits = []
    while (wait := services.attempt_delivery(str(delivery.id))) is not None:
        waits.append(wait)
    assert len(waits) == TRIES - 1 and all(0.005 <= w <= 0.02 for w in waits)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.FAILED and delivery.attempts == TRIES
    attempts = list(DeliveryAttempt.objects.all())
    assert [a.number for a in attempts] == list(range(1, TRIES + 1))
    assert all(a.status_code is None and "Timeout" in a.error and a.duration_ms >= 250 for a in attempts)
    assert services.attempt_delivery(str(delivery.id)) is None  # given up: no further try
    assert DeliveryAttempt.objects.count() == TRIES


def test_a_failing_target_that_recovers_is_delivered_at_its_next_try(receiver):
    receiver.status = 503
    fire(receiver.url)
    delivery_id = str(Delivery.objects.get().id)
    assert services.attempt_delivery(delivery_id) is not None
    receiver.status = 204
    assert services.attempt_delivery(delivery_id) is None
    assert Delivery.objects.get().state == Delivery.DELIVERED
    assert list(DeliveryAttempt.objects.values_list("status_code", flat=True)) == [503, 204]


def test_a_target_that_became_private_is_refused_at_delivery_and_logged(receiver, settings):
    fire(receiver.url)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False  # as when its DNS now points inside
    delivery_id = str(Delivery.objects.get().id)
    assert services.attempt_delivery(delivery_id) is not None
    assert receiver.requests == []
    assert "webhook_url" in DeliveryAttempt.objects.get().error


def test_the_task_retries_through_celery_until_given_up(receiver, eager_celery):
    receiver.status = 404
    fire(receiver.url)
    assert DeliveryAttempt.objects.count() == TRIES
    deliver_webhook.apply(args=(str(Delivery.objects.get().id),))  # a finished delivery is not tried again
    assert DeliveryAttempt.objects.count() == TRIES


def test_a_price_stored_by_the_poll_task_that_crosses_a_level_is_delivered_to_the_receiver(sandbox, receiver, eager_celery):
    """End to end: the real poll task against the sandbox exchange stores BTC's price; an alert
    just under it (and one far above it) was set over HTTP; the receiver gets one signed webhook."""
    from django.test import Client

    assert poll_exchange("binance") == 4
    price = float(market_selectors.latest_tick("binance", "BTC").price)
    client = Client(headers={"X-API-Key": new_key("e2e")[1]})
    below = client.post("/api/alerts", {"symbol": "BTC", "above": price * 0.5, "webhook_url": receiver.url},
                        content_type="application/json").json()
    client.post("/api/alerts", {"symbol": "BTC", "above": price * 10, "webhook_url": receiver.url},
                content_type="application/json")
    deadline = time.time() + 30
    while not receiver.requests and time.time() < deadline:
        time.sleep(1)  # the next poll slot
        poll_exchange("binance")
    [request] = receiver.requests
    payload = json.loads(request["body"])
    assert payload["alert_id"] == below["id"] and payload["symbol"] == "BTC" and payload["price"] >= price * 0.5
    assert verify_signature(below["secret"], request["headers"]["X-Cryptosite-Timestamp"],
                            request["headers"]["X-Cryptosite-Signature"], request["body"])
    listed = client.get(f"/api/alerts/{below['id']}").json()
    assert listed["state"] == "fired" and listed["fired_count"] == 1 and listed["last_fired"]
    assert Delivery.objects.get().state == Delivery.DELIVERED


def test_the_admin_shows_alerts_and_each_deliverys_tries_read_only(receiver, admin_client):
    receiver.status = 500
    alert, secret = fire(receiver.url)
    delivery_id = str(Delivery.objects.get().id)
    services.attempt_delivery(delivery_id)
    services.attempt_delivery(delivery_id)
    page = admin_client.get(f"/admin/alerts/delivery/{delivery_id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("500") >= 2 and "pending" in html and 'name="_save"' not in html
    listing = admin_client.get("/admin/alerts/pricealert/")
    assert listing.status_code == 200 and f">{alert.id}<" in listing.content.decode()
    assert secret not in admin_client.get(f"/admin/alerts/pricealert/{alert.id}/change/").content.decode()
    assert admin_client.get("/admin/alerts/delivery/add/").status_code == 403


def test_a_delivery_whose_try_was_lost_is_queued_again_by_the_sweep_and_delivered_once(receiver, eager_celery, monkeypatch):
    """The broker away when a fire was queued: the delivery stays pending in the log; the sweep
    (a beat task every minute) queues it again once its try is overdue, and not before."""
    from alerts import tasks

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("broker down")))
    fire(receiver.url)
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.PENDING and receiver.requests == []
    monkeypatch.undo()
    assert services.requeue_overdue() == 0  # not overdue yet
    later = delivery.next_attempt_at + timedelta(seconds=services.OVERDUE_SECONDS + 1)
    assert services.requeue_overdue(now=later) == 1
    assert len(receiver.requests) == 1 and Delivery.objects.get().state == Delivery.DELIVERED
    assert services.requeue_overdue(now=later + timedelta(hours=1)) == 0  # delivered: nothing again


def test_deleting_an_alert_keeps_its_deliveries_log_and_ends_a_pending_one(receiver):
    receiver.status = 500
    alert, _secret = fire(receiver.url)
    delivery_id = str(Delivery.objects.get().id)
    assert services.attempt_delivery(delivery_id) is not None  # one failed try, more to come
    services.delete_alert(alert.key, alert.id)
    assert services.attempt_delivery(delivery_id) is None  # nothing to sign with: given up
    delivery = Delivery.objects.get()
    assert delivery.alert is None and delivery.state == Delivery.FAILED and json.loads(delivery.body)["alert_id"] == alert.id
    assert [a.error for a in DeliveryAttempt.objects.order_by("number")][1].startswith("The alert was deleted")
    assert len(receiver.requests) == 1


def test_a_delivery_connects_to_the_address_checked_not_to_a_second_lookup(receiver, settings, monkeypatch):
    """Private targets refused: the name is resolved and checked once per try, and the connection
    goes to that address (here the receiver's, taken for a public one), the name kept in Host."""
    from alerts import webhooks

    port = receiver.url.split(":")[2].split("/")[0]
    monkeypatch.setattr(webhooks, "resolve", lambda host, _port: ["127.0.0.1"] if host == "hooks.invalid" else [])
    monkeypatch.setattr(webhooks, "_forbidden", lambda address: False)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    fire(f"http://hooks.invalid:{port}/hook")  # a name no real lookup can resolve
    assert services.attempt_delivery(str(Delivery.objects.get().id)) is None
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.invalid:{port}" and request["path"] == "/hook"
    assert Delivery.objects.get().state == Delivery.DELIVERED

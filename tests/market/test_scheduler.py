"""Exactly one Celery beat sends (cryptosite.beat.LeasedScheduler), with the real Redis behind its
lease: a second one stands by, and takes over when the first stops or its lease lapses. Real
processes killed outright: tests/e2e/test_scale_out.py."""

import time

import pytest

from core import keys
from cryptosite.beat import LeasedScheduler
from cryptosite.celery import app
from market.locks import holders


class Recording(LeasedScheduler):
    """Celery's scheduler as the product runs it, keeping what it sends instead of sending it."""

    def apply_entry(self, entry, producer=None):
        self.sent.append(entry.name)


@pytest.fixture
def schedulers(tmp_path, settings):
    settings.SCHEDULER_LEASE_SECONDS = 1.0
    product_schedule = app.conf.beat_schedule
    app.conf.beat_schedule = {"every": {"task": "market.tasks.dispatch_polls", "schedule": 0.05}}
    made = []
    for name in ("a", "b"):
        scheduler = Recording(app, schedule_filename=str(tmp_path / name), lazy=False)
        scheduler.sent = []
        made.append(scheduler)
    yield made
    for scheduler in made:
        scheduler.close()
    app.conf.beat_schedule = product_schedule


def run_for(seconds: float, *schedulers: Recording) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for scheduler in schedulers:
            scheduler.tick()
        time.sleep(0.02)


def test_one_beat_sends_and_the_other_stands_by(schedulers):
    a, b = schedulers
    run_for(1.5, a, b)
    assert len(a.sent) > 10 and b.sent == []
    assert holders([keys.SCHEDULER_HOLDING])[keys.SCHEDULER_HOLDING] == a.holding.owner


def test_a_standby_takes_over_when_the_holder_stops(schedulers):
    a, b = schedulers
    run_for(0.5, a, b)
    a.close()  # released: b's next look finds the lease free
    run_for(0.6, b)
    assert b.sent


def test_a_standby_takes_over_once_a_dead_holders_lease_lapses(schedulers):
    a, b = schedulers
    run_for(0.5, a, b)
    a.holding.lock = None  # a killed beat never releases: its lease lapses within SCHEDULER_LEASE_SECONDS
    died = time.monotonic()
    while not b.sent:
        run_for(0.05, b)
        assert time.monotonic() - died < 3, "no takeover"
    assert a.sent and holders([keys.SCHEDULER_HOLDING])[keys.SCHEDULER_HOLDING] == b.holding.owner

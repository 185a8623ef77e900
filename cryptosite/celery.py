"""The Celery app: one worker pool and exactly one beat, both configured from Django settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")

app = Celery("cryptosite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs) -> None:
    # The schedule is built from settings in one place (market.schedule).
    from market.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()

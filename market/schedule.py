"""The Celery beat schedule, built from settings in one place."""

from django.conf import settings


def beat_schedule() -> dict:
    # Price polls go through a one-second dispatcher that reads each exchange's interval
    # (editable in the admin), so a changed schedule applies without restarting beat.
    tick = min(1.0, settings.POLL_INTERVAL)
    schedule = {
        "dispatch-polls": {"task": "market.tasks.dispatch_polls", "schedule": tick, "options": {"expires": tick * 2}},
    }
    for source in settings.EXCHANGES:
        schedule[f"candles-{source}"] = {
            "task": "market.tasks.sync_exchange_candles",
            "schedule": settings.CANDLE_SYNC_INTERVAL,
            "args": (source,),
            "options": {"expires": settings.CANDLE_SYNC_INTERVAL * 2},
        }
        schedule[f"candles-full-{source}"] = {
            "task": "market.tasks.sync_exchange_candles",
            "schedule": 3600.0,
            "args": (source, True),
        }
    schedule["poll-books"] = {"task": "market.tasks.poll_books", "schedule": settings.BOOK_INTERVAL,
                              "options": {"expires": settings.BOOK_INTERVAL * 2}}
    schedule["prune-ticks"] = {"task": "market.tasks.prune_old_ticks", "schedule": 3600.0}
    schedule["prune-untracked"] = {"task": "market.tasks.prune_untracked_markets", "schedule": 3600.0,
                                   "options": {"expires": 3600.0}}
    schedule["requeue-webhooks"] = {"task": "alerts.tasks.requeue_overdue_deliveries", "schedule": 60.0,
                                    "options": {"expires": 60.0}}
    schedule["prune-webhook-log"] = {"task": "alerts.tasks.prune_delivery_log", "schedule": 3600.0,
                                     "options": {"expires": 3600.0}}
    return schedule

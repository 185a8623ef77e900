"""The Celery beat schedule, built from settings in one place."""

from django.conf import settings


def beat_schedule() -> dict:
    schedule = {}
    for source in settings.EXCHANGES:
        schedule[f"poll-{source}"] = {
            "task": "market.tasks.poll_exchange",
            "schedule": settings.POLL_INTERVAL,
            "args": (source,),
            "options": {"expires": settings.POLL_INTERVAL * 2},
        }
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
    schedule["prune-ticks"] = {"task": "market.tasks.prune_old_ticks", "schedule": 3600.0}
    return schedule

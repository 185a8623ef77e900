"""The webhook of a fired alert: one try per run, logged; retried with back-off (jitter) until it
is delivered or its schedule (ALERT_RETRY_*) runs out. It runs on the webhooks' own queue
(CELERY_TASK_ROUTES), never beside price polls; a delivery waiting for its key's turn
(ALERT_WEBHOOKS_PER_KEY) comes back the same way, without a try counted."""

from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True, max_retries=None)
def deliver_webhook(self, delivery_id: str) -> None:
    wait = services.attempt_delivery(delivery_id)
    if wait is not None:
        raise self.retry(countdown=wait)


@shared_task(ignore_result=True)
def requeue_overdue_deliveries() -> int:
    """Every minute (beat): deliveries whose try was lost are queued again."""
    return services.requeue_overdue()


@shared_task(ignore_result=True)
def prune_delivery_log() -> int:
    """Every hour (beat): finished deliveries older than ALERT_DELIVERY_LOG_DAYS are deleted."""
    return services.prune_deliveries()

"""The webhook of a fired alert: one try per run, logged; retried with back-off (jitter) until it
is delivered or its schedule (ALERT_RETRY_*) runs out."""

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

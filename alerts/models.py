"""Price alerts of API keys, and the log of their webhook deliveries."""

import uuid

from django.db import models
from django.utils import timezone

from apikeys.models import ApiKey


class PriceAlert(models.Model):
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="alerts")
    source = models.CharField(max_length=20)
    symbol = models.CharField(max_length=20)
    condition = models.CharField(max_length=12)  # market.domain.alerts.CONDITIONS
    threshold = models.FloatField()
    window = models.CharField(max_length=8, blank=True, default="")  # change_pct only
    repeat = models.BooleanField(default=False)
    webhook_url = models.CharField(max_length=2000)  # checked by alerts.webhooks.check_target
    # The HMAC key of its webhooks: shown to the client once, at creation (it signs, so it is kept).
    secret = models.CharField(max_length=80)
    # Fires only while armed, which one atomic UPDATE takes away (exactly once across processes);
    # a repeat alert is armed again by a price that no longer meets it.
    armed = models.BooleanField(default=True)
    fired_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # It fires only on a price newer than this (epoch ms): at first the market's latest price when it
    # was set; at each fire, that price's time plus the repeat cooldown (ALERT_REPEAT_COOLDOWN_SECONDS).
    since_ms = models.BigIntegerField()

    class Meta:
        indexes = [
            # The evaluator loads one market's alerts at a time (alerts.index).
            models.Index(fields=["source", "symbol", "condition", "threshold"], name="alert_market_threshold"),
            models.Index(fields=["key", "-id"], name="alert_key"),
        ]

    def __str__(self) -> str:
        extra = f" over {self.window}" if self.window else ""
        return f"#{self.pk} {self.symbol} on {self.source} {self.condition} {self.threshold:g}{extra}"

    @property
    def state(self) -> str:
        if self.armed:
            return "armed"
        return "rearming" if self.repeat else "fired"


class Delivery(models.Model):
    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATES = [(PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "given up")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The log outlives its alert (deleted: null); the body keeps what was sent.
    alert = models.ForeignKey(PriceAlert, on_delete=models.SET_NULL, null=True, related_name="deliveries")
    url = models.CharField(max_length=2000)
    body = models.TextField()  # the exact JSON sent (signed as is)
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the next try is due (pending only): a delivery whose try never ran (the broker was away
    # when it was queued, a worker died with it) is queued again once this is well past.
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    # While a try is being sent: one of its key's ALERT_WEBHOOKS_PER_KEY slots, held until the try is
    # logged or, if its worker died meanwhile, until this time (the try's deadline and a margin).
    sending_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["-created_at"], name="delivery_created"),
            models.Index(fields=["finished_at"], name="delivery_finished"),  # the log's pruning
            models.Index(fields=["sending_until"], name="delivery_sending", condition=models.Q(sending_until__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    # The start of the receiver's answer (alerts.sender.EXCERPT_BYTES at most: the rest is never read).
    response = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique")]

    def __str__(self) -> str:
        return f"try {self.number}: {self.status_code or self.error}"

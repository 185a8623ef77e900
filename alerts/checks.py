"""The alerts' settings are validated at start, loudly."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def alert_settings(app_configs, **kwargs):
    errors = []
    if settings.ALERT_WEBHOOK_TIMEOUT <= 0:
        errors.append(Error("ALERT_WEBHOOK_TIMEOUT must be positive (seconds per try, in all)", id="alerts.E001"))
    if settings.ALERT_WEBHOOKS_PER_KEY < 1:
        errors.append(Error("ALERT_WEBHOOKS_PER_KEY must be 1 or more", hint="a key's tries sent at once", id="alerts.E002"))
    if settings.ALERT_REPEAT_COOLDOWN_SECONDS < 0:
        errors.append(Error("ALERT_REPEAT_COOLDOWN_SECONDS must be 0 or more", id="alerts.E003"))
    if settings.ALERT_DELIVERY_LOG_DAYS < 1:
        errors.append(Error("ALERT_DELIVERY_LOG_DAYS must be 1 or more", hint="days a finished delivery stays in the log",
                            id="alerts.E004"))
    return errors

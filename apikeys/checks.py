"""API_KEY_TIERS is validated at start, loudly."""

from django.conf import settings
from django.core.checks import Error, register

from core.ratelimit import parse_rate


@register()
def api_key_settings(app_configs, **kwargs):
    errors = []
    for name, rate in settings.API_KEY_TIERS.items():
        if not name or len(name) > 30:
            errors.append(Error(f"Invalid tier name in API_KEY_TIERS: {name!r}", hint="1 to 30 characters", id="apikeys.E001"))
        try:
            parse_rate(rate)
        except ValueError:
            errors.append(Error(f"Invalid rate for tier {name} in API_KEY_TIERS: {rate!r}", hint="e.g. pro=10000/m",
                                id="apikeys.E002"))
    return errors

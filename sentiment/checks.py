"""System checks of the sentiment settings, run at start."""

from django.conf import settings
from django.core.checks import Error, register

from .domain.engine import MAX_TEXT_LENGTH


@register()
def sentiment_settings(app_configs, **kwargs):
    if settings.SENTIMENT_MAX_REQUEST_CHARS < MAX_TEXT_LENGTH:
        # Under it, a single text the contract allows would be refused.
        return [Error(f"SENTIMENT_MAX_REQUEST_CHARS must be at least {MAX_TEXT_LENGTH}",
                      hint="the default, 65536, admits every request a 64 KiB body can carry", id="sentiment.E002")]
    return []

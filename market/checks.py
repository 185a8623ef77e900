"""System checks: settings from the environment are validated at start, loudly."""

import re

from django.conf import settings
from django.core.checks import Error, register

from .domain.errors import InvalidInput
from .domain.symbols import KNOWN_SOURCES, normalize_symbol

RATE = re.compile(r"^\d+/(\d*)([smhd])$")


@register()
def market_settings(app_configs, **kwargs):
    errors = []
    if not settings.EXCHANGES:
        errors.append(Error("EXCHANGES is empty", hint="e.g. EXCHANGES=binance,coinbase", id="market.E001"))
    for name in settings.EXCHANGES:
        if name not in KNOWN_SOURCES:
            errors.append(Error(f"Unknown exchange in EXCHANGES: {name}", hint=f"one of {', '.join(KNOWN_SOURCES)}", id="market.E002"))
    for raw in settings.SYMBOLS:
        try:
            normalize_symbol(raw)
        except InvalidInput:
            errors.append(Error(f"Invalid symbol in SYMBOLS: {raw}", id="market.E003"))
    if settings.POLL_INTERVAL <= 0 or settings.CANDLE_SYNC_INTERVAL <= 0:
        errors.append(Error("POLL_INTERVAL and CANDLE_SYNC_INTERVAL must be positive", id="market.E004"))
    if not RATE.match(settings.RATE_LIMIT):
        errors.append(Error(f"Invalid RATE_LIMIT: {settings.RATE_LIMIT}", hint="e.g. 100/m", id="market.E005"))
    if not 1 <= settings.BACKFILL_CANDLES <= 10_000:
        errors.append(Error("BACKFILL_CANDLES must be between 1 and 10000", id="market.E006"))
    if settings.NUM_PROXIES < 0:
        errors.append(Error("NUM_PROXIES must be 0 or more", id="market.E007"))
    return errors

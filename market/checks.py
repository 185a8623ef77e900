"""System checks: settings from the environment are validated at start, loudly."""

from django.conf import settings
from django.core.checks import Error, register

from core.clientip import parse_proxies
from core.ratelimit import parse_rate

from .domain.errors import InvalidInput
from .domain.symbols import normalize_symbol
from .exchanges import NATIVE, unknown_ids
from .feeds import FEEDS as NATIVE_FEEDS


@register()
def market_settings(app_configs, **kwargs):
    errors = []
    if not settings.EXCHANGES:
        errors.append(Error("EXCHANGES is empty", hint="e.g. EXCHANGES=binance,coinbase", id="market.E001"))
    for name in unknown_ids(settings.EXCHANGES):
        errors.append(Error(f"Unknown exchange in EXCHANGES: {name}",
                            hint=f"one of {', '.join(NATIVE)}, or any exchange id ccxt serves (python -c 'import ccxt; "
                                 f"print(ccxt.exchanges)'), e.g. okx, bybit, bitstamp", id="market.E002"))
    for raw in settings.SYMBOLS:
        try:
            normalize_symbol(raw)
        except InvalidInput:
            errors.append(Error(f"Invalid symbol in SYMBOLS: {raw}", id="market.E003"))
    if settings.POLL_INTERVAL <= 0 or settings.CANDLE_SYNC_INTERVAL <= 0:
        errors.append(Error("POLL_INTERVAL and CANDLE_SYNC_INTERVAL must be positive", id="market.E004"))
    for name in ("RATE_LIMIT", "ADMIN_LOGIN_RATE_LIMIT"):
        try:
            parse_rate(getattr(settings, name))
        except ValueError as exc:
            errors.append(Error(f"Invalid {name}: {getattr(settings, name)}", hint=f"{exc}; e.g. 100/m", id="market.E005"))
    if settings.WEB_CONCURRENCY < 1 or settings.WEB_THREADS < 1 or settings.WEB_SERVER not in ("uvicorn", "daphne"):
        errors.append(Error("WEB_CONCURRENCY and WEB_THREADS must be 1 or more, WEB_SERVER uvicorn or daphne", id="market.E008"))
    if not 1 <= settings.BACKFILL_CANDLES <= 10_000:
        errors.append(Error("BACKFILL_CANDLES must be between 1 and 10000", id="market.E006"))
    for name in settings.FEEDS:
        if name not in settings.EXCHANGES:
            errors.append(Error(f"FEEDS names {name}, which is not in EXCHANGES", hint="FEEDS is a subset of EXCHANGES",
                                id="market.E009"))
        elif name in settings.FEEDLESS:
            errors.append(Error(f"FEEDS names {name}, which has no live feed", hint="it is polled: leave it out of FEEDS",
                                id="market.E009"))
    for name, url in settings.EXCHANGE_FEED_URLS.items():
        if url and not url.startswith(("ws://", "wss://")) or not url and name in NATIVE_FEEDS:
            errors.append(Error(f"The {name} feed URL must start with ws:// or wss://: {url}", id="market.E010"))
    if settings.TICK_MIN_INTERVAL < 0 or settings.FEED_RECONNECT_MAX_SECONDS <= 0:
        errors.append(Error("TICK_MIN_INTERVAL must be 0 or more, FEED_RECONNECT_MAX_SECONDS positive", id="market.E011"))
    if min(settings.HEALTH_CACHE_SECONDS, settings.UNTRACKED_MARKETS_MAX, settings.UNTRACKED_MARKETS_PER_CLIENT) < 0 \
            or settings.UNTRACKED_RETENTION_HOURS <= 0:
        errors.append(Error("HEALTH_CACHE_SECONDS, UNTRACKED_MARKETS_MAX and UNTRACKED_MARKETS_PER_CLIENT must be 0 or "
                            "more, UNTRACKED_RETENTION_HOURS positive", id="market.E013"))
    if not 1 <= settings.UNTRACKED_CANDLES <= 10_000:
        errors.append(Error("UNTRACKED_CANDLES must be between 1 and 10000", id="market.E014"))
    try:
        parse_proxies(settings.TRUSTED_PROXIES)
    except ValueError as exc:
        errors.append(Error(f"Invalid TRUSTED_PROXIES: {exc}", hint="addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1",
                            id="market.E007"))
    if settings.NUM_PROXIES.strip() not in ("", "0"):
        # Counting hops trusted whatever sent them; a silently ignored setting would put every
        # client behind the proxy on the proxy's one budget.
        errors.append(Error("NUM_PROXIES is no longer read: list the proxies' addresses in TRUSTED_PROXIES instead",
                            hint="e.g. TRUSTED_PROXIES=127.0.0.1 for a proxy on this machine", id="market.E012"))
    return errors

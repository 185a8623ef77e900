"""Symbols and sources: the one place where user input becomes a base asset or exchange name."""

import re

from .errors import InvalidInput, NotFound

# Quote currencies stripped from pair notations: BTCUSDT, BTC-USD, BTC/USDT, XBTUSD.
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "ZUSD")
# Kraken's historical names for a few assets.
ALIASES = {"XBT": "BTC", "XXBT": "BTC", "XETH": "ETH", "XDG": "DOGE", "XXDG": "DOGE"}
_VALID = re.compile(r"^[A-Z0-9_]{1,20}$")
MAX_SYMBOL_LENGTH = 30


def normalize_symbol(raw: object) -> str:
    """`btc`, `BTCUSDT`, `BTC-USD`, `BTC/USDT` and `XBT` all become `BTC`."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("Missing required parameter: symbol")
    text = raw.strip().upper()
    if len(text) > MAX_SYMBOL_LENGTH:
        raise InvalidInput(f"Invalid symbol: {raw[:MAX_SYMBOL_LENGTH]}...")
    base = text
    for sep in ("-", "/", ":"):
        if sep in text:
            base, _, quote = text.partition(sep)
            if not quote:
                raise InvalidInput(f"Invalid symbol: {raw}")
            break
    else:
        for quote in QUOTES:
            if text.endswith(quote) and len(text) > len(quote) and text != quote:
                base = text[: -len(quote)]
                break
    base = ALIASES.get(base, base)
    if not _VALID.match(base):
        raise InvalidInput(f"Invalid symbol: {raw}")
    return base


def normalize_symbols(raw: object, limit: int) -> list[str]:
    """A list of symbols (from JSON or a comma-separated string), de-duplicated, in order."""
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("symbols must be a non-empty list")
    if len(raw) > limit:
        raise InvalidInput(f"Too many symbols: at most {limit}")
    seen: dict[str, None] = {}
    for item in raw:
        seen[normalize_symbol(item)] = None
    return list(seen)


# Display names keep the capitalisation of the widget-system payloads.
# What a `source` may be, as the API documents it.
SOURCE_HELP = "a configured source: binance, coinbase, kraken, coingecko or any ccxt exchange id in EXCHANGES"

# Other sources' names as their owners write them (any other id: capitalised).
DISPLAY_NAMES = {"binance": "Binance", "coinbase": "Coinbase", "kraken": "Kraken", "coingecko": "CoinGecko",
                 "okx": "OKX", "bybit": "Bybit", "bitstamp": "Bitstamp", "gemini": "Gemini", "kucoin": "KuCoin",
                 "bitfinex": "Bitfinex", "htx": "HTX", "gateio": "Gate.io", "mexc": "MEXC", "cryptocom": "Crypto.com"}


def normalize_source(raw: object, configured: list[str], allow_composite: bool = False) -> str:
    """A source name, case-insensitive, that must be one of the configured exchanges."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("Invalid source")
    name = raw.strip().lower()
    if allow_composite and name == "composite":
        return name
    if name not in configured:
        choices = ", ".join(configured + (["composite"] if allow_composite else []))
        raise NotFound(f"Unknown source: {raw}. Must be one of: {choices}")
    return name


def resolve_source(raw: object, configured: list[str], *, composite: bool = False, default: str | None = None) -> str:
    """The one rule for the source a request, message or alert names: the first configured exchange
    (or `default`) when it names none, else a configured exchange, case-insensitive, or `composite`
    where the caller serves one across the exchanges. An empty query parameter counts as absent:
    the HTTP interfaces pass `raw or None`."""
    if raw is None:
        return default if default is not None else configured[0]
    return normalize_source(raw, configured, allow_composite=composite)


def price_market(symbol: object, source: object, configured: list[str]) -> tuple[str, str]:
    """(source, symbol) a price request names. REST parameters and the ASGI edge read them with
    this one rule."""
    return resolve_source(source or None, configured, composite=True), normalize_symbol(symbol)


def display_name(source: str) -> str:
    return DISPLAY_NAMES.get(source, source.capitalize())

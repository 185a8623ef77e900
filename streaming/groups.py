"""Channel-layer group names: built here and nowhere else."""

import re

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def price_group(source: str, symbol: str) -> str:
    return f"prices.{source}.{_SAFE.sub('_', symbol)}"


def ohlc_group(source: str, symbol: str, timeframe: str) -> str:
    return f"ohlc.{source}.{_SAFE.sub('_', symbol)}.{timeframe}"


def book_group(source: str, symbol: str) -> str:
    return f"book.{source}.{_SAFE.sub('_', symbol)}"

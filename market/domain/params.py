"""Parsing of query parameters, shared by every interface."""

import math
from collections.abc import Mapping

from .errors import InvalidInput
from .symbols import normalize_symbol, resolve_source
from .timeframes import parse_timeframe

# The bounds and defaults of every interface's parameters, written once: the parsers below apply
# them, and the REST serializers' fields (which document them in the OpenAPI schema) read them.
LIMIT_MIN, LIMIT_MAX = 1, 1000  # candles, ticks or indicator rows one request may ask for
OHLC_LIMIT = 100
HISTORY_LIMIT = 50
INDICATORS_LIMIT = 200
BOOK_DEPTH_MAX = 100  # levels a side
BOOK_DEPTH_REST, BOOK_DEPTH_STREAM = 20, 10


def parse_int(raw: object, name: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise InvalidInput(f"Invalid {name}: must be an integer")
    try:
        value = int(raw) if not isinstance(raw, str) else int(raw.strip(), 10)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid {name}: {raw!s:.40} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidInput(f"Invalid {name}: {value}. Must be between {lo} and {hi}")
    return value


def parse_number(raw: object, name: str, lo: float, hi: float, above_lo: bool = False) -> float:
    """A JSON number (not a string, not a boolean) from lo to hi, or above lo to hi."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or not (
            lo < raw <= hi if above_lo else lo <= raw <= hi):
        bounds = f"above {lo:g} and at most {hi:g}" if above_lo else f"from {lo:g} to {hi:g}"
        raise InvalidInput(f"Invalid {name}: {raw!s:.40}. Must be a number {bounds}")
    return float(raw)


def parse_limit(raw: object, default: int, lo: int = LIMIT_MIN, hi: int = LIMIT_MAX) -> int:
    return parse_int(raw, "limit", default=default, lo=lo, hi=hi)


def ohlc_params(data: Mapping, exchanges: list[str]) -> dict:
    """The candles a request names (symbol, timeframe, limit, source, start, end): REST parameters and
    the ASGI edge read them with this one rule."""
    source = data.get("source")
    start = parse_int(data.get("start"), "start", lo=0, hi=10**14)
    end = parse_int(data.get("end"), "end", lo=0, hi=10**14)
    if start is not None and end is not None and start > end:
        raise InvalidInput("Invalid range: start is after end")
    return {
        "symbol": normalize_symbol(data.get("symbol")),
        "timeframe": parse_timeframe(data.get("timeframe") or "1h"),
        "limit": parse_limit(data.get("limit"), default=OHLC_LIMIT),
        "source": resolve_source(source or None, exchanges),
        "start": start,
        "end": end,
    }

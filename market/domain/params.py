"""Parsing of numeric query parameters, shared by every interface."""

from .errors import InvalidInput


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


def parse_limit(raw: object, default: int, lo: int = 1, hi: int = 1000) -> int:
    return parse_int(raw, "limit", default=default, lo=lo, hi=hi)

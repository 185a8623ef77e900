"""The shapes of a price and a candle on the wire, built in one place and used by REST,
WebSocket and widgets alike."""

from datetime import UTC, datetime
from decimal import Decimal

from .domain.symbols import display_name


def number(value: Decimal | None) -> float | None:
    """A stored Decimal as a JSON number. float() keeps every digit an exchange prints
    (up to 15 significant digits) and drops only trailing zeros."""
    return None if value is None else float(value)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def price_payload(tick) -> dict:
    """`/api/market/price` and WebSocket `price_update` (epoch-ms timestamp)."""
    return {"symbol": tick.symbol, "price": number(tick.price), "timestamp": tick.timestamp_ms, "source": tick.source}


def widget_price_payload(tick) -> dict:
    """`/prices` entries: display source names and ISO timestamps, as the widget system had."""
    return {
        "price": number(tick.price),
        "symbol": tick.symbol,
        "source": display_name(tick.source),
        "timestamp": iso(tick.timestamp_ms),
        "change_pct": number(tick.change_pct),
    }


def history_payload(tick) -> dict:
    return {
        "timestamp": iso(tick.timestamp_ms),
        "source": display_name(tick.source),
        "symbol": tick.symbol,
        "price": number(tick.price),
        "change_pct": number(tick.change_pct),
    }


def candle_payload(candle) -> dict:
    return {
        "timestamp": candle.open_time,
        "open": number(candle.open),
        "high": number(candle.high),
        "low": number(candle.low),
        "close": number(candle.close),
        "volume": number(candle.volume),
        "closed": candle.closed,
    }

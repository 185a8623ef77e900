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


def prices_payload(markets: dict[str, list[str]], ticks) -> dict:
    """`/prices`: every tracked market's newest price, by display source name then symbol."""
    out = {display_name(src): {} for src in markets}
    for tick in ticks:
        out[display_name(tick.source)][tick.symbol] = widget_price_payload(tick)
    return out


def coins_payload(markets: dict[str, list[str]]) -> dict:
    """`/coins`: the tracked symbols per display source name."""
    return {display_name(src): symbols for src, symbols in markets.items()}


def history_payload(tick) -> dict:
    return {
        "timestamp": iso(tick.timestamp_ms),
        "source": display_name(tick.source),
        "symbol": tick.symbol,
        "price": number(tick.price),
        "change_pct": number(tick.change_pct),
    }


def candle_payload(candle) -> dict:
    """A candle from an exchange or the domain (Decimal prices)."""
    row = (candle.open_time, number(candle.open), number(candle.high), number(candle.low), number(candle.close),
           number(candle.volume), candle.closed)
    return stored_candle_payloads([row])[0]


def stored_candle_payloads(candles) -> list[dict]:
    """Candles as read back from storage (market.ticks.StoredCandle: floats already), in bulk: a
    thousand in a fraction of a millisecond."""
    return [
        {"timestamp": t, "open": o, "high": h, "low": lo, "close": c, "volume": v, "closed": bool(closed)}
        for t, o, h, lo, c, v, closed in candles
    ]

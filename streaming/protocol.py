"""The /ws protocol: the client's messages, parsed and validated with the same rules as REST, the
close codes, and the shapes of the server's replies."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from market.domain.alerts import AlertSpec, parse_alert
from market.domain.errors import MarketError
from market.domain.params import BOOK_DEPTH_MAX, BOOK_DEPTH_STREAM, parse_int, parse_number
from market.domain.symbols import normalize_symbol, normalize_symbols, resolve_source
from market.domain.timeframes import parse_timeframe
from market.indicators.spec import Indicator, parse_indicators

from .filters import MAX_CHANGE_PCT, MAX_INTERVAL_SECONDS

CHANNELS = ("prices", "ohlc", "book")
CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1011
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401  # a wrong, revoked or expired API key (4000 + HTTP's 401)


class ProtocolError(Exception):
    """A bad message: answered with {"type": "error"}; the connection stays open."""


@dataclass(frozen=True)
class Subscription:
    source: str
    symbol: str
    channel: str = "prices"
    timeframe: str | None = None
    indicators: tuple[Indicator, ...] = ()  # the candle channel: values sent with each candle
    depth: int | None = None  # the book channel: levels a side
    min_interval: float = 0.0  # the prices channel's filters (0: none)
    min_change_pct: float = 0.0

    @property
    def series(self) -> tuple:
        """What the subscription follows, whatever indicators it adds."""
        return (self.source, self.symbol, self.channel, self.timeframe)  # depth, indicators and filters may change

    @property
    def filtered(self) -> bool:
        return bool(self.min_interval or self.min_change_pct)


def parse_message(text: str) -> dict:
    try:
        message = json.loads(text)
    except (ValueError, TypeError):
        raise ProtocolError("Invalid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("Message must be a JSON object")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("Missing message type")
    return message


def parse_subscriptions(message: dict) -> list[Subscription]:
    """The subscriptions a subscribe/unsubscribe message names."""
    try:
        if "symbols" in message:
            symbols = normalize_symbols(message["symbols"], settings.WS_MAX_SUBSCRIPTIONS)
        elif message.get("symbol") is None:
            raise ProtocolError("Missing symbol")
        else:
            symbols = [normalize_symbol(message["symbol"])]
        raw_source = message.get("source")
        channel = message.get("channel", "prices")
        if channel not in CHANNELS:
            raise ProtocolError(f"Unknown channel: {channel}. Must be one of: {', '.join(CHANNELS)}")
        # a book may be one across the exchanges (composite); the other channels name one exchange
        source = resolve_source(raw_source, settings.EXCHANGES, composite=channel == "book")
        depth = None
        if channel == "book":
            depth = parse_int(message.get("depth"), "depth", default=BOOK_DEPTH_STREAM, lo=1, hi=BOOK_DEPTH_MAX)
        timeframe = parse_timeframe(message.get("timeframe", "1m")) if channel == "ohlc" else None
        indicators: tuple[Indicator, ...] = ()
        if message.get("indicators") is not None:
            if channel != "ohlc":
                raise ProtocolError("indicators go with the ohlc channel")
            indicators = tuple(parse_indicators(message["indicators"]))
        filters = _parse_filters(message, channel)
    except MarketError as exc:
        raise ProtocolError(str(exc)) from None
    return [Subscription(source, symbol, channel, timeframe, indicators, depth, *filters) for symbol in symbols]


def _parse_filters(message: dict, channel: str) -> tuple[float, float]:
    """min_interval (seconds) and min_change_pct: 0 when absent."""
    interval, change = message.get("min_interval"), message.get("min_change_pct")
    if interval is None and change is None:
        return 0.0, 0.0
    if channel != "prices":
        raise ProtocolError("min_interval and min_change_pct go with the prices channel")
    return (0.0 if interval is None else parse_number(interval, "min_interval", 0, MAX_INTERVAL_SECONDS),
            0.0 if change is None else parse_number(change, "min_change_pct", 0, MAX_CHANGE_PCT))


def parse_alert_message(message: dict) -> AlertSpec:
    """An `alert` message: one symbol, an optional source (the subscribe default), one condition."""
    try:
        if "symbols" in message:
            raise ProtocolError("An alert names one symbol")
        if message.get("symbol") is None:
            raise ProtocolError("Missing symbol")
        symbol = normalize_symbol(message["symbol"])
        return parse_alert(message, resolve_source(message.get("source"), settings.EXCHANGES), symbol)
    except MarketError as exc:
        raise ProtocolError(str(exc)) from None


def parse_alert_id(message: dict) -> str:
    """The alert an unsubscribe names by its id."""
    alert_id = message["id"]
    if not isinstance(alert_id, str) or not alert_id:
        raise ProtocolError(f"Invalid id: {alert_id!s:.40}. Must be an alert's id, as in alert_set")
    return alert_id


def parse_auth_key(message: dict) -> str:
    """The raw API key an `auth` message carries."""
    raw = message.get("key")
    if not isinstance(raw, str):
        raise ProtocolError("Missing key: {\"type\": \"auth\", \"key\": \"<API key>\"}")
    return raw


# --- the server's replies ----------------------------------------------------------------------
def confirmation(sub: Subscription, kind: str) -> dict:
    """A `subscribed` or `unsubscribed` reply."""
    verb = "Subscribed to" if kind == "subscribed" else "Unsubscribed from"
    payload = {"type": kind, "symbol": sub.symbol, "message": f"{verb} {sub.symbol} updates", "source": sub.source}
    if sub.channel != "prices":
        payload.update(channel=sub.channel, timeframe=sub.timeframe)
    if sub.indicators:
        payload["indicators"] = [i.key for i in sub.indicators]
    if sub.depth:
        payload["depth"] = sub.depth
    if sub.filtered and kind == "subscribed":
        payload.update(min_interval=sub.min_interval, min_change_pct=sub.min_change_pct)
    return payload


def subscriptions_message(subscriptions: Iterable[Subscription], alerts: list[dict]) -> dict:
    """The reply to `get_subscriptions`: the symbols, each subscription as asked for, the alerts."""
    subscriptions = list(subscriptions)
    symbols = list(dict.fromkeys(s.symbol for s in subscriptions))
    detail = [
        {"symbol": s.symbol, "source": s.source, "channel": s.channel, **({"timeframe": s.timeframe} if s.timeframe else {}),
         **({"indicators": [i.key for i in s.indicators]} if s.indicators else {}),
         **({"depth": s.depth} if s.depth else {}),
         **({"min_interval": s.min_interval, "min_change_pct": s.min_change_pct} if s.filtered else {})}
        for s in subscriptions
    ]
    return {"type": "subscriptions", "symbols": symbols, "subscriptions": detail, "alerts": alerts}


def book_message(data: dict, depth: int) -> dict:
    """A `book` message cut to a subscriber's depth (the bands are the fetched book's)."""
    return {"type": "book", **data, "depth": depth, "bids": data["bids"][:depth], "asks": data["asks"][:depth]}

"""The /ws protocol's client messages, parsed and validated with the same rules as REST."""

import json
from dataclasses import dataclass

from django.conf import settings

from market.domain.errors import MarketError
from market.domain.params import parse_int
from market.domain.symbols import normalize_source, normalize_symbol, normalize_symbols
from market.domain.timeframes import parse_timeframe
from market.indicators.spec import Indicator, parse_indicators

CHANNELS = ("prices", "ohlc", "book")
BOOK_DEPTH_DEFAULT, BOOK_DEPTH_MAX = 10, 100


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

    @property
    def series(self) -> tuple:
        """What the subscription follows, whatever indicators it adds."""
        return (self.source, self.symbol, self.channel, self.timeframe)  # depth and indicators may change


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
        if channel == "book" and isinstance(raw_source, str) and raw_source.lower() == "composite":
            source = "composite"  # one book across the exchanges
        else:
            source = settings.EXCHANGES[0] if raw_source is None else normalize_source(raw_source, settings.EXCHANGES)
        depth = None
        if channel == "book":
            depth = parse_int(message.get("depth"), "depth", default=BOOK_DEPTH_DEFAULT, lo=1, hi=BOOK_DEPTH_MAX)
        timeframe = parse_timeframe(message.get("timeframe", "1m")) if channel == "ohlc" else None
        indicators: tuple[Indicator, ...] = ()
        if message.get("indicators") is not None:
            if channel != "ohlc":
                raise ProtocolError("indicators go with the ohlc channel")
            indicators = tuple(parse_indicators(message["indicators"]))
    except MarketError as exc:
        raise ProtocolError(str(exc)) from None
    return [Subscription(source, symbol, channel, timeframe, indicators, depth) for symbol in symbols]

"""The base class every exchange feed implements: the exchange's own subscribe, unsubscribe and
probe messages, and the parsing of what it sends into events (market.domain.feeds)."""

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..domain.feeds import Event


class Feed(ABC):
    """One exchange's public WebSocket feed, spoken in its own wire format.

    Subclasses set the exchange's published limits (`max_streams` per connection, client messages
    per second, a connection's lifetime) and implement the abstract methods. A market is named
    by our symbol (BTC) and by the feed's own id for it (BTCUSDT, BTC-USD, BTC/USD)."""

    name: str = ""
    max_streams: int = 100_000  # subscriptions one connection may hold
    sends_per_second: float = 5.0  # client messages the exchange accepts a second (we stay under)
    max_age_seconds: float | None = None  # reconnect before the exchange cuts the connection
    candle_timeframes: tuple[str, ...] = ()  # the timeframes whose candles the feed carries

    @property
    def has_candles(self) -> bool:
        return bool(self.candle_timeframes)

    def __init__(self, url: str):
        self.url = url

    def decode(self, raw: str | bytes) -> object:
        """A frame as JSON, numbers exactly as printed (ValueError when it is not JSON)."""
        return json.loads(raw, parse_float=Decimal)

    @abstractmethod
    def market_id(self, symbol: str, rest_id: str) -> str:
        """The feed's name for a market, from our symbol and the REST listing's id for it."""

    @abstractmethod
    def streams_per_market(self) -> int: ...

    @abstractmethod
    def subscribe(self, market_ids: list[str], req_id: int) -> list[dict]: ...

    @abstractmethod
    def unsubscribe(self, market_ids: list[str], req_id: int) -> list[dict]: ...

    def probe(self, req_id: int) -> dict | None:
        """A request the exchange answers, sent when the feed has been quiet (None: it has heartbeats)."""
        return None

    @abstractmethod
    def parse(self, message: object, symbols: dict[str, str], now_ms: int) -> list[Event]:
        """Events in a decoded message; `symbols` maps this connection's market ids to our symbols.
        Anything of an unexpected shape raises (KeyError, TypeError, ValueError...)."""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(text: str) -> int:
    """An RFC 3339 time (2024-05-01T12:00:00.123456Z; nanoseconds are cut to micro) as epoch ms,
    in whole numbers (a float timestamp can lose the last millisecond)."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]

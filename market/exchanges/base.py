"""The base class every exchange adapter implements."""

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from ..depth.book import Book, ordered
from ..domain.candles import Candle
from ..domain.prices import Quote
from ..domain.symbols import display_name
from .errors import BAD_RESPONSE, NOT_LISTED, ExchangeError
from .http import get_json

LISTING_TTL_SECONDS = 3600


class Exchange(ABC):
    """One exchange's public REST API, spoken in its own wire format.

    Subclasses set `name`, `min_interval` (seconds between requests, far inside the published
    budget) and `budget` (that budget, written down), and implement the abstract methods. An
    `aggregator` (CoinGecko) prices a coin across many venues: it is a source of its own, never part
    of the composite median. `min_poll_interval` is the shortest poll period the source's budget
    allows (the poller uses the longer of it and POLL_INTERVAL unless the admin's schedule says).
    """

    name: str = ""
    min_interval: float = 0.0
    budget: str = ""
    aggregator: bool = False
    # What a price's timestamp is, as /health tells it.
    timestamps: str = "the exchange's time of the price (its trade or ticker), else the poll's"
    min_poll_interval: float = 0.0
    # Sent with every request (an API key, for the sources that take one).
    headers: dict[str, str] | None = None

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._listing: dict[str, str] = {}
        self._listing_at = 0.0

    @property
    def display(self) -> str:
        return display_name(self.name)

    async def _get(self, path: str, params: dict | None = None, allow_status: tuple[int, ...] = ()):
        return await get_json(
            self.name,
            self.display,
            f"{self.base_url}{path}",
            params=params,
            timeout=self.timeout,
            min_interval=self.min_interval,
            allow_status=allow_status,
            headers=self.headers,
        )

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Anything unexpected in a body is the exchange's fault: 502, never a crash."""
        try:
            yield
        except ExchangeError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
            raise ExchangeError(f"{self.display} API error: unexpected response ({exc!r:.80})", BAD_RESPONSE) from None

    # --- listings ---------------------------------------------------------------------------
    async def listing(self, refresh: bool = False) -> dict[str, str]:
        """Base asset -> this exchange's USD market id, cached for an hour."""
        if refresh or not self._listing or time.monotonic() - self._listing_at > LISTING_TTL_SECONDS:
            self._listing = await self.fetch_listing()
            self._listing_at = time.monotonic()
        return self._listing

    async def market_id(self, symbol: str) -> str:
        listing = await self.listing()
        if symbol not in listing:
            raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED)
        return listing[symbol]

    async def listed(self, symbols: list[str]) -> dict[str, str]:
        """This exchange's market id -> our symbol, for those of `symbols` it lists."""
        listing = await self.listing()
        return {listing[s]: s for s in symbols if s in listing}

    @abstractmethod
    async def fetch_listing(self) -> dict[str, str]: ...

    @abstractmethod
    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        """The latest price of each listed symbol (unlisted ones are left out)."""

    @abstractmethod
    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        """Candles with open time in [start, end], oldest first, `closed` set against now."""

    @abstractmethod
    async def fetch_book(self, symbol: str, depth: int, now_ms: int) -> Book:
        """The order book's best `depth` levels a side, the exchange's numbers as printed."""


def dec(value: object) -> Decimal:
    """An exchange number (string or JSON number) as an exact Decimal."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    result = value if isinstance(value, Decimal) else Decimal(str(value))
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def book_levels(rows, depth: int) -> tuple[tuple[str, str], ...]:
    """[[price, quantity, ...], ...] as printed (strings), checked to be numbers, the first `depth`."""
    out = []
    for row in rows[:depth]:
        price, quantity = str(row[0]), str(row[1])
        dec(price), dec(quantity)  # a level that is not two numbers is the exchange's fault: 502
        out.append((price, quantity))
    return tuple(out)


def make_book(source: str, symbol: str, bids, asks, depth: int, timestamp_ms: int) -> Book:
    bids, asks = ordered(book_levels(bids, len(bids)), book_levels(asks, len(asks)))
    return Book(source, symbol, bids[:depth], asks[:depth], timestamp_ms)

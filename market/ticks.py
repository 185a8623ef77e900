"""The values a stored price and a stored candle travel as between writes (prices, candles), selectors and
interfaces."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class StoredTick:
    source: str
    symbol: str
    price: Decimal
    timestamp_ms: int
    received_ms: int
    change_pct: Decimal | None = None

    @classmethod
    def from_model(cls, row) -> "StoredTick":
        return cls(row.source, row.symbol, row.price, to_ms(row.timestamp), to_ms(row.received_at), row.change_pct)

    def to_cache(self) -> dict:
        data = asdict(self)
        data["price"] = str(self.price)
        data["change_pct"] = None if self.change_pct is None else str(self.change_pct)
        return data

    @classmethod
    def from_cache(cls, data: dict) -> "StoredTick":
        pct = data.get("change_pct")
        return cls(
            data["source"], data["symbol"], Decimal(data["price"]), int(data["timestamp_ms"]), int(data["received_ms"]),
            None if pct is None else Decimal(pct),
        )


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class StoredCandle(NamedTuple):
    """A candle as read back from storage, prices as floats: the numbers clients are sent (a float
    keeps every digit an exchange prints), read without a Decimal or a model instance per value."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool  # 0 or 1 from SQLite

"""Order books. Pure Python.

A book keeps the exchange's own numbers as it printed them (strings), best level first. Its
spread and mid are computed exactly (Decimal). The composite book sums quantities per price level
across exchanges and says which exchanges contribute to each level, and how much sits within
0.5%, 1% and 2% of the mid, on each side."""

from dataclasses import dataclass
from decimal import Decimal

BANDS = (Decimal("0.5"), Decimal("1"), Decimal("2"))


@dataclass(frozen=True, slots=True)
class Book:
    source: str
    symbol: str
    bids: tuple[tuple[str, str], ...]  # (price, quantity) as printed, best (highest) first
    asks: tuple[tuple[str, str], ...]  # best (lowest) first
    timestamp_ms: int

    def top(self, depth: int) -> "Book":
        return Book(self.source, self.symbol, self.bids[:depth], self.asks[:depth], self.timestamp_ms)


def ordered(bids, asks) -> tuple[tuple, tuple]:
    """Levels sorted best first (exchanges already send them so; a shuffled answer is not trusted)."""
    return (tuple(sorted(bids, key=lambda level: Decimal(level[0]), reverse=True)),
            tuple(sorted(asks, key=lambda level: Decimal(level[0]))))


def spread_and_mid(bids, asks) -> tuple[Decimal | None, Decimal | None]:
    if not bids or not asks:
        return None, None
    bid, ask = Decimal(bids[0][0]), Decimal(asks[0][0])
    return ask - bid, (ask + bid) / 2


def within(levels, mid: Decimal, pct: Decimal, side: str, complete: bool = True) -> Decimal | None:
    """Quantity on one side priced within pct percent of the mid; None when the levels at hand end
    inside the band and are not the whole book (the rest of the band is unknown)."""
    limit = mid * (1 - pct / 100) if side == "bid" else mid * (1 + pct / 100)
    total = Decimal(0)
    for level in levels:
        price = Decimal(level[0])
        if (side == "bid" and price < limit) or (side == "ask" and price > limit):
            return total
        total += Decimal(level[1])
    return total if complete else None


def composite(books: list[Book], depth: int, fetched: int) -> dict:
    """One book across exchanges: quantities summed per price level (prices compared as numbers),
    each level with the exchanges that contribute to it. A book cut at `fetched` levels covers only
    so far from its best price: the composite stops where the shallowest cut book stops, so that no
    level lacks an exchange's quantity that lies beyond what was fetched."""
    floor = max((Decimal(b.bids[-1][0]) for b in books if len(b.bids) >= fetched), default=None)
    ceiling = min((Decimal(b.asks[-1][0]) for b in books if len(b.asks) >= fetched), default=None)
    merged: dict[str, dict[Decimal, list]] = {"bids": {}, "asks": {}}
    for book in books:
        for side, levels in (("bids", book.bids), ("asks", book.asks)):
            for price, quantity in levels:
                key = Decimal(price).normalize()
                if (side == "bids" and floor is not None and key < floor) or (
                        side == "asks" and ceiling is not None and key > ceiling):
                    continue
                entry = merged[side].setdefault(key, [Decimal(0), []])
                entry[0] += Decimal(quantity)
                if book.source not in entry[1]:
                    entry[1].append(book.source)
    bids = sorted(merged["bids"].items(), reverse=True)
    asks = sorted(merged["asks"].items())
    # Exchanges' books may cross (one's best bid above another's best ask): kept as they are, and
    # the spread is then negative, the arbitrage a client may want to see.
    return {
        "bids": [[_plain(p), _plain(q), sorted(s)] for p, (q, s) in bids[:depth]],
        "asks": [[_plain(p), _plain(q), sorted(s)] for p, (q, s) in asks[:depth]],
        "all_bids": [(_plain(p), _plain(q)) for p, (q, _s) in bids],
        "all_asks": [(_plain(p), _plain(q)) for p, (q, _s) in asks],
        "complete": (floor is None, ceiling is None),
    }


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def depth_bands(bids, asks, complete: tuple[bool, bool] = (True, True)) -> dict:
    """{"0.5": {"bid": quantity, "ask": quantity}, "1": ..., "2": ...} around the mid; a side's
    quantity is null where the fetched levels end inside the band (`complete`: whether each side
    is the whole book)."""
    _spread, mid = spread_and_mid(bids, asks)
    if mid is None:
        return {}

    def text(value):
        return None if value is None else _plain(value)

    return {_plain(p): {"bid": text(within(bids, mid, p, "bid", complete[0])),
                        "ask": text(within(asks, mid, p, "ask", complete[1]))} for p in BANDS}

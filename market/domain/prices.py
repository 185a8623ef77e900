"""Price ticks: the value type, change in percent, and the composite (median) price."""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median


@dataclass(frozen=True, slots=True)
class Quote:
    """A price as an exchange printed it, with the exchange's time when it gave one."""

    symbol: str
    price: Decimal
    timestamp_ms: int | None = None


def change_pct(previous: Decimal | None, current: Decimal) -> Decimal | None:
    """Percent change from the previous price of the same market, to 4 decimals."""
    if previous is None or previous == 0:
        return None
    pct = (current - previous) / previous * 100
    return pct.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def move_pct(previous: float, current: float) -> float | None:
    """The same percent change for prices as floats (alerts, stream filters), to the same 4
    decimals: 100 -> 100.1 is a move of 0.1%, not of 0.09999999999994."""
    if previous == 0:
        return None
    return round((current - previous) / previous * 100, 4)


def composite_price(prices: dict[str, Decimal], max_deviation: Decimal = Decimal("0.02")) -> tuple[Decimal, list[str]]:
    """The median of per-exchange prices after rejecting outliers.

    A price more than `max_deviation` (2%) away from the median of all prices is an
    outlier (a stuck feed, a broken market); the answer is the median of the rest, and the
    sources it used.
    """
    if not prices:
        raise ValueError("no prices")
    mid = Decimal(median(prices.values()))
    kept = {s: p for s, p in prices.items() if mid == 0 or abs(p - mid) / mid <= max_deviation}
    if not kept:
        kept = prices
    return Decimal(median(kept.values())), sorted(kept)

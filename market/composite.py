"""The composite price: the median of the configured exchanges' prices of one market, outliers
rejected (market.domain.prices), from their fresh stored prices, fetched live where there is none.
Aggregators (CoinGecko) are not exchanges: their price is itself a blend of venues, so they stay out."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from . import prices, selectors
from .domain.errors import MarketError
from .domain.prices import composite_price
from .exchanges import venues


@dataclass(frozen=True, slots=True)
class Composite:
    price: Decimal
    timestamp_ms: int  # the newest of the prices used
    sources: list[str]  # the exchanges whose prices made the median
    stale: bool  # none of them is fresh


def composite_of(symbol: str) -> Composite:
    """Fresh prices are preferred; only when no exchange has one are stale ones used (and the
    answer says so). Raises the first exchange's error when none has a price at all."""
    ticks, first_error = {}, None
    for source in venues(settings.EXCHANGES):
        try:
            ticks[source] = prices.fresh_or_live_tick(source, symbol)
        except MarketError as exc:
            first_error = first_error or exc
    fresh = {src: t for src, t in ticks.items() if selectors.is_fresh(t)} or ticks
    if not fresh:
        raise first_error
    price, used = composite_price({src: t.price for src, t in fresh.items()})
    return Composite(price, max(fresh[src].timestamp_ms for src in used), used,
                     not any(selectors.is_fresh(fresh[src]) for src in used))

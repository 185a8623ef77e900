"""What a new subscription is sent first: the market's current price, candle or book."""

from channels.db import database_sync_to_async

from market import prices
from market.candles import candles_for_request
from market.depth import services as depth
from market.domain.errors import MarketError
from market.payloads import candle_payload, price_payload

from .indicator_stream import with_indicators
from .offloop import off_loop
from .protocol import Subscription, book_message
from .session import Session


def _error(message: str) -> dict:
    return {"type": "error", "error": message}


async def snapshot(sub: Subscription, session: Session, tracked: bool, tick) -> list[dict]:
    """The messages to send a subscription now (an `error` among them when a read failed: the
    subscription and the connection stay). `tracked` and `tick` are market.markets.watch()'s answer."""
    if sub.channel == "book":
        try:
            book = await off_loop(depth.order_book)(sub.source, sub.symbol, sub.depth)
        except MarketError as exc:
            return [_error(str(exc))]
        return [book_message(book, sub.depth)]
    if sub.channel == "prices":
        if tick is None and not tracked:
            try:
                tick = await database_sync_to_async(prices.fresh_or_live_tick)(sub.source, sub.symbol)
            except MarketError:
                tick = None
        if tick is not None and session.is_new(payload := price_payload(tick)):
            if (filter_ := session.filters.get((sub.source, sub.symbol))) is not None:
                filter_.sent(payload["timestamp"], payload["price"])
            return [{"type": "price_update", **payload}]
        return []
    try:
        candles = await database_sync_to_async(candles_for_request)(
            sub.source, sub.symbol, sub.timeframe, 1, None, None
        )
    except MarketError as exc:  # the exchange failed: say so, keep the subscription and the connection
        return [_error(f"No candle yet for {sub.symbol} {sub.timeframe} on {sub.source}: {exc}")]
    if not candles:
        return []
    update = {"symbol": sub.symbol, "source": sub.source, "timeframe": sub.timeframe, "candle": candle_payload(candles[-1])}
    if not sub.indicators:
        return [{"type": "ohlc_update", **update}]
    message, problem = await with_indicators(sub.indicators, update)
    return [message] if problem is None else [_error(problem), message]

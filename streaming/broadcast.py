"""Hands stored prices and candles to the WebSocket groups (called by the market tasks after
their commit, through settings.MARKET_BROADCASTER)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from market.payloads import candle_payload, price_payload

from .groups import book_group, ohlc_group, price_group


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, message)


def publish(ticks=(), candles=(), books=()) -> int:
    messages = [
        (price_group(t.source, t.symbol), {"type": "price.update", "data": price_payload(t)}) for t in ticks
    ]
    for source, symbol, timeframe, candle in candles:
        data = {"symbol": symbol, "source": source, "timeframe": timeframe, "candle": candle_payload(candle)}
        messages.append((ohlc_group(source, symbol, timeframe), {"type": "ohlc.update", "data": data}))
    for book in books:  # the full fetched depth: each subscriber is sent the depth it asked for
        messages.append((book_group(book["source"], book["symbol"]), {"type": "book.update", "data": book}))
    if messages:
        async_to_sync(_send_all)(messages)
    return len(messages)

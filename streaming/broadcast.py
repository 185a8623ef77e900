"""Hands prices, candles and books to the WebSocket groups, through settings.MARKET_BROADCASTER.

`publish` is for synchronous callers (the market tasks after their commit, the ingest's writer
thread for candles): the sends run on one event loop per process, kept for the process's life,
so its Redis connections stay open between calls (async_to_sync would build a loop, and the
channel layer a connection pool, for every call). `apublish` is for a caller with an event loop
of its own (the ingest process publishes each feed price from its loop, the moment it arrives).
Each loop has a channel layer of its own, with the process's configuration. Groups are sent to
concurrently, each group's messages in order."""

import asyncio
import os
import threading
import weakref

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from market.payloads import candle_payload, price_payload

from .groups import book_group, ohlc_group, price_group

SEND_TIMEOUT_SECONDS = 10

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()
_layers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[object, object]]" = weakref.WeakKeyDictionary()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's publishing loop, started on first use (and again in a forked child)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, daemon=True, name="channel-layer publisher").start()
        return _loop


def _loop_layer():
    """The running loop's own layer, with the process's configuration: its connections belong to
    that loop, and whoever closes the process layer's pools (a test, at the end of its loop)
    leaves them alone. Made again when the configuration changes."""
    loop = asyncio.get_running_loop()
    current = get_channel_layer()
    made = _layers.get(loop)
    if made is None or made[0] is not current:
        made = _layers[loop] = (current, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
    return made[1]


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = _loop_layer()
    by_group: dict[str, list[dict]] = {}
    for group, message in messages:
        by_group.setdefault(group, []).append(message)

    async def send(group: str, queued: list[dict]) -> None:
        for message in queued:
            await layer.group_send(group, message)

    results = await asyncio.gather(*(send(g, q) for g, q in by_group.items()), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _messages(ticks, candles, books) -> list[tuple[str, dict]]:
    messages = [
        (price_group(t.source, t.symbol), {"type": "price.update", "data": price_payload(t)}) for t in ticks
    ]
    for source, symbol, timeframe, candle in candles:
        data = {"symbol": symbol, "source": source, "timeframe": timeframe, "candle": candle_payload(candle)}
        messages.append((ohlc_group(source, symbol, timeframe), {"type": "ohlc.update", "data": data}))
    for book in books:  # the full fetched depth: each subscriber is sent the depth it asked for
        messages.append((book_group(book["source"], book["symbol"]), {"type": "book.update", "data": book}))
    return messages


async def apublish(ticks=(), candles=(), books=()) -> int:
    """`publish` from a coroutine, on the caller's loop."""
    messages = _messages(ticks, candles, books)
    if messages:
        await _send_all(messages)
    return len(messages)


def publish(ticks=(), candles=(), books=()) -> int:
    messages = _messages(ticks, candles, books)
    if messages:
        future = asyncio.run_coroutine_threadsafe(_send_all(messages), _publisher_loop())
        try:
            future.result(SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            raise
    return len(messages)

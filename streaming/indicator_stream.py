"""Indicators on the candle channel: each candle update sent with the values of the indicators a
subscription asked for, computed on the stored candles once per process for everyone asking."""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from market.indicators.services import latest_values

from .offloop import off_loop
from .protocol import Subscription

Series = tuple  # (source, symbol, timeframe)

_computed: "OrderedDict[tuple, asyncio.Future]" = OrderedDict()


async def indicator_values(update: dict, indicators) -> dict:
    """The indicators' values for an updated candle, computed once per process for every
    subscriber asking for the same ones (a shared future), on the stored candles."""
    c = update["candle"]
    key = (update["source"], update["symbol"], update["timeframe"], c["timestamp"], c["high"], c["low"], c["close"],
           c["volume"], tuple(i.key for i in indicators))
    future = _computed.get(key)
    if future is None:
        future = _computed[key] = asyncio.ensure_future(off_loop(latest_values)(
            update["source"], update["symbol"], update["timeframe"], c["timestamp"], list(indicators)))
        while len(_computed) > 512:
            _computed.popitem(last=False)
    try:
        return await asyncio.shield(future)
    except Exception:
        _computed.pop(key, None)
        raise


async def with_indicators(indicators, update: dict) -> tuple[dict, str | None]:
    """A candle update's `ohlc_update` message with the indicators' values for that candle, and
    the error to send before it when they could not be had."""
    try:
        values, problem = await indicator_values(update, indicators), None
    except Exception as exc:  # the exchange, the database or Redis away: the candle goes out without them
        values, problem = None, f"Indicators unavailable for {update['symbol']} {update['timeframe']}: {exc}"
    return {"type": "ohlc_update", **update, "indicators": values}, problem


class IndicatorStream:
    """One connection's candle subscriptions that asked for indicators, and their updates waiting
    for the values. `send(indicators, update)` sends one; `closing()` says the connection is ending."""

    def __init__(self, send: Callable[[tuple, dict], Awaitable[None]], closing: Callable[[], bool]):
        self.send = send
        self.closing = closing
        # Candle subscriptions that asked for indicators, by (source, symbol, timeframe).
        self.wanted: dict[Series, tuple] = {}
        # Candle updates waiting for their indicators, per series: the newest per candle, in order.
        self.pending: dict[Series, dict[int, dict]] = {}
        self.tasks: dict[Series, asyncio.Task] = {}

    def follow(self, sub: Subscription) -> None:
        if sub.channel == "ohlc":
            key = (sub.source, sub.symbol, sub.timeframe)
            if sub.indicators:
                self.wanted[key] = sub.indicators
            else:
                self.wanted.pop(key, None)

    def forget(self, sub: Subscription) -> None:
        self.wanted.pop((sub.source, sub.symbol, sub.timeframe), None)

    def queue(self, key: Series, data: dict) -> None:
        """Keep the newest update per candle; one worker per series sends them in order, so a slow
        computation makes updates wait (and merge), never pile up."""
        self.pending.setdefault(key, {})[data["candle"]["timestamp"]] = data
        task = self.tasks.get(key)
        if task is None or task.done():
            self.tasks[key] = asyncio.get_running_loop().create_task(self._send_pending(key))

    async def _send_pending(self, key: Series) -> None:
        while self.pending.get(key):
            pending = self.pending[key]
            data = pending.pop(min(pending))
            indicators = self.wanted.get(key)
            if indicators and not self.closing():
                await self.send(indicators, data)

    def cancel(self) -> None:
        for task in self.tasks.values():
            task.cancel()

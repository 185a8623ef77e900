"""What the tests of the feeds ccxt.pro serves (OKX's, Bybit's) share: the sandbox's stream for
one exchange, what is stored and subscribed, and the check that prices are stored and published
at the exchange's exact prices."""

import asyncio
from decimal import Decimal as D

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError

from market import selectors
from market.models import PriceTick
from sandbox import simulation as sim
from sandbox.feeds import start_feed_server
from streaming.groups import price_group
from tests.ingest.test_exchange import Running, track, until


def serve(sandbox, settings, exchange: str, path: str, trade_period: float):
    """The sandbox's stream for `exchange` at `path`, the only exchange configured (a fixture's body)."""
    handler = sandbox.RequestHandlerClass
    server = start_feed_server(handler.market, handler.feed_faults, trade_period=trade_period, candle_period=0.3)
    settings.EXCHANGE_FEED_URLS = {exchange: f"ws://127.0.0.1:{server.port}{path}"}
    settings.EXCHANGES = [exchange]
    settings.POLL_INTERVAL = 1.0
    settings.TICK_MIN_INTERVAL = 0.5
    settings.FEED_RECONNECT_MAX_SECONDS = 1.0
    yield server
    server.stop()


async def db(call, *args):
    """A database call while the writer may hold the (in-memory SQLite) table's lock: retried."""
    for _ in range(50):
        try:
            return await sync_to_async(call)(*args)
        except OperationalError:
            await asyncio.sleep(0.1)
    return await sync_to_async(call)(*args)


def stored(source: str, symbol: str) -> list[tuple[int, D]]:
    return [(int(t.timestamp.timestamp() * 1000), t.price)
            for t in PriceTick.objects.filter(source=source, symbol=symbol).order_by("id")]


def subscriptions(server, exchange: str) -> list[str]:
    """The sandbox's subscription keys of `exchange`'s connections, in any channel or topic."""
    return [key for client in list(server.clients) if client.exchange == exchange for key in client.trades]


async def check_exact_prices(source: str, sandbox, watch: str, subscribed, instruments: set[str], window: range):
    """BTC and DOGE tracked: both stored, BTC published, the feed live through `watch` and
    subscribed to `instruments` (`subscribed()` reads them); each stored price is one the sandbox
    printed for a moment in `window` (ms) around its time, to the last digit."""
    await db(track, source, "BTC", "DOGE")
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(price_group(source, "BTC"), channel)
    async with Running(source) as exchange:
        await until(lambda: len(stored(source, "BTC")) >= 4 and len(stored(source, "DOGE")) >= 4)
        await until(lambda: source in selectors.live_feeds(), 5)
        published = await asyncio.wait_for(layer.receive(channel), 5)
        assert published["data"]["symbol"] == "BTC" and published["data"]["source"] == source
        assert exchange.live_since is not None and exchange.connections[0].kind == watch
        assert subscribed() == instruments
    market = sandbox.RequestHandlerClass.market
    for symbol in ("BTC", "DOGE"):
        ticks = await db(stored, source, symbol)
        stamps = [t for t, _ in ticks]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        for stamp, price in ticks:
            printed = {market.scale(source, symbol, sim.price(symbol, stamp + late)) for late in window}
            assert price in printed, (symbol, stamp, price)

"""The /ws consumer: validates, joins groups, sends a snapshot, forwards events.

What it calls lives by role: streaming.protocol parses the client's messages and shapes the
replies, streaming.session keeps the connection's state, streaming.live_alerts its alerts,
streaming.snapshots what a subscription is sent first, streaming.indicator_stream the indicators
on its candles, streaming.auth the API key's checks, streaming.outbox and streaming.rendering
the writing out.
"""

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from apikeys.credentials import key_from_asgi
from core import metrics
from market import markets
from market.depth import services as depth
from market.domain.errors import MarketError

from . import auth
from .groups import book_group, ohlc_group, price_group
from .indicator_stream import IndicatorStream, with_indicators
from .live_alerts import start_alert
from .offloop import off_loop
from .outbox import Outbox
from .protocol import (
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    ProtocolError,
    Subscription,
    book_message,
    confirmation,
    parse_alert_id,
    parse_alert_message,
    parse_auth_key,
    parse_message,
    parse_subscriptions,
    subscriptions_message,
)
from .rendering import RENDERED, rendered, rendered_book
from .session import Market, Session
from .snapshots import snapshot

log = logging.getLogger(__name__)

KEY_CHECK_SECONDS = 5.0  # how often an open connection's key is checked again (a revoke ends it)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _group(sub: Subscription) -> str:
    if sub.channel == "book":
        return book_group(sub.source, sub.symbol)
    return price_group(sub.source, sub.symbol) if sub.channel == "prices" else ohlc_group(sub.source, sub.symbol, sub.timeframe)


class PriceStreamConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop, made lean for fan-out. Channels waits on the client and on the
        channel layer at once, with a new task and a wake-up for every message; a price fanned out
        to thousands of subscribers paid that thousands of times. Here the client's events are
        dispatched from one loop, and the channel layer's reader hands group messages to deliver()
        directly (serving.channel_layer), which writes them out at once."""
        self.scope, self.base_send = scope, send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.outbox = Outbox(scope, send)
        # attach/detach are serving.channel_layer's own (ProcessFanoutChannelLayer): the consumer works
        # with that channel layer only.
        self.channel_layer.attach(self.channel_name, self.deliver)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            self.channel_layer.detach(self.channel_name)
            self.outbox.cancel()

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every handler: a hop to its one
        # database thread per message. Every query here goes through database_sync_to_async,
        # which closes stale connections around itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.client_id = str(uuid.uuid4())
        self.session = Session(settings.WS_MAX_MESSAGES_PER_SECOND)
        self.indicators = IndicatorStream(self._send_with_indicators, lambda: self.closing)
        self.releasing: set[asyncio.Task] = set()  # the groups being left once an alert is done
        self.closing = False
        self.api_key = self.raw_key = None
        await self.accept()
        raw = key_from_asgi(self.scope.get("headers", []))
        if raw is not None and not await self._authenticate(raw, announce=False):
            return
        metrics.WS_CONNECTIONS.inc()
        self.counted = True
        await self.send_json(
            {
                "type": "connected",
                "client_id": self.client_id,
                "message": "Connected to cryptocurrency data stream",
                "timestamp": _now_iso(),
            }
        )
        if self.api_key is not None:
            await self._announce_key()
        self.heartbeat = asyncio.create_task(self._heartbeat())

    async def _authenticate(self, raw: str, announce: bool = True) -> bool:
        """A key at the handshake (a header) or in an `auth` message: a wrong one ends the connection."""
        try:
            self.api_key = await auth.authenticate(raw)
        except auth.KeyRefused as exc:
            await self.refuse(str(exc), exc.code)
            return False
        self.raw_key = raw
        if announce:
            await self._announce_key()
        return True

    async def _announce_key(self) -> None:
        await self.send_json({"type": "authenticated", "name": self.api_key.name, "tier": self.api_key.tier})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            metrics.WS_CONNECTIONS.dec()
            self.counted = False
        if hasattr(self, "heartbeat"):
            self.heartbeat.cancel()
        if not hasattr(self, "session"):
            return
        self.indicators.cancel()
        for sub in list(self.session.subscriptions):
            await self.channel_layer.group_discard(_group(sub), self.channel_name)
        for market in self.session.alerts.markets():
            await self.channel_layer.group_discard(price_group(*market), self.channel_name)

    # --- outgoing ----------------------------------------------------------------------------
    async def send_json(self, payload: dict) -> None:
        self._send(payload)

    def _send(self, payload: dict) -> None:
        self.outbox.emit(self.session.numbered(json.dumps(payload)))

    async def close(self, code=None, reason=None) -> None:
        message = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = code
        if reason:
            message["reason"] = reason
        self.outbox.emit(None, close=message)

    async def error(self, message: str) -> None:
        await self.send_json({"type": "error", "error": message})

    async def refuse(self, message: str, code: int) -> None:
        self.closing = True
        await self.error(message)
        await self.close(code=code)

    # --- incoming ---------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode("utf-8")) > settings.WS_MAX_MESSAGE_BYTES:
            return await self.refuse(f"Message too large: at most {settings.WS_MAX_MESSAGE_BYTES} bytes", CLOSE_TOO_BIG)
        if self.session.over_rate():
            return await self.refuse(
                f"Rate limit exceeded: at most {settings.WS_MAX_MESSAGES_PER_SECOND} messages per second", CLOSE_POLICY
            )
        try:
            message = None
            message = parse_message(raw)
            handler = self.HANDLERS.get(message["type"])
            if handler is None:
                raise ProtocolError(f"Unknown message type: {message['type']}")
            await handler(self, message)
        except ProtocolError as exc:
            await self.error(str(exc))
        except (DatabaseError, RedisError, OSError) as exc:  # a dependency away: say so, keep the connection
            log.warning("/ws %s failed: %s", message.get("type") if isinstance(message, dict) else "message", exc)
            await self.error("Service unavailable: the database or Redis cannot be reached; try again")

    async def on_subscribe(self, message: dict) -> None:
        for sub in parse_subscriptions(message):
            same = self.session.same_series(sub)
            if same is not None:  # already followed: the indicators or depth asked for now replace the earlier ones
                self.session.follow(sub, replacing=same)
                self.indicators.follow(sub)
                await self.send_json(confirmation(sub, "subscribed"))
                if sub.indicators != same.indicators or sub.depth != same.depth:
                    await self._snapshot(sub, True, None)
                continue
            if len(self.session.subscriptions) >= settings.WS_MAX_SUBSCRIPTIONS:
                return await self.refuse(
                    f"Subscription limit exceeded: at most {settings.WS_MAX_SUBSCRIPTIONS} per connection", CLOSE_POLICY
                )
            if sub.channel == "book":
                await self._subscribe_book(sub)
                continue
            try:
                tracked, tick = await database_sync_to_async(markets.watch)(sub.source, sub.symbol)
            except MarketError as exc:
                await self.error(str(exc))
                continue
            self.session.follow(sub)
            self.indicators.follow(sub)
            await self.channel_layer.group_add(_group(sub), self.channel_name)
            await self.send_json(confirmation(sub, "subscribed"))
            await self._snapshot(sub, tracked, tick)

    async def _subscribe_book(self, sub: Subscription) -> None:
        """A book: its snapshot now (the symbol checked), then every change while it is watched."""
        try:
            book = await off_loop(depth.order_book)(sub.source, sub.symbol, sub.depth)
            await off_loop(depth.watch)(sub.source, sub.symbol)
        except MarketError as exc:
            await self.error(str(exc))
            return
        self.session.follow(sub)
        await self.channel_layer.group_add(_group(sub), self.channel_name)
        await self.send_json(confirmation(sub, "subscribed"))
        await self.send_json(book_message(book, sub.depth))

    async def on_unsubscribe(self, message: dict) -> None:
        # An alert goes by its id; a symbol's subscriptions go without its alerts (an alert needs
        # no subscription, and one that was set stays until it fires or is removed).
        if message.get("id") is not None:
            return await self._remove_alert(parse_alert_id(message))
        for sub in parse_subscriptions(message):
            for s in self.session.matching(sub.symbol, sub.source if "source" in message else None):
                self.session.forget(s)
                self.indicators.forget(s)
                if s.channel == "prices":
                    await self._release((s.source, s.symbol))
                else:
                    await self.channel_layer.group_discard(_group(s), self.channel_name)
            await self.send_json(confirmation(sub, "unsubscribed"))

    async def on_auth(self, message: dict) -> None:
        await self._authenticate(parse_auth_key(message))

    async def on_ping(self, message: dict) -> None:
        await self.send_json({"type": "pong", "timestamp": _now_iso()})

    async def on_get_subscriptions(self, message: dict) -> None:
        await self.send_json(subscriptions_message(self.session.subscriptions, self.session.alerts.describe()))

    # --- alerts ----------------------------------------------------------------------------------
    async def on_alert(self, message: dict) -> None:
        spec = parse_alert_message(message)
        alerts = self.session.alerts
        if len(alerts) >= settings.WS_MAX_ALERTS:
            return await self.refuse(f"Alert limit exceeded: at most {settings.WS_MAX_ALERTS} alerts per connection", CLOSE_POLICY)
        try:
            alert = await off_loop(start_alert)(alerts.next_id(), spec)
        except MarketError as exc:
            return await self.error(str(exc))
        # Watched before the group is joined: the market's prices are then sent only if subscribed.
        alerts.add(alert)
        self.session.rewatch(spec.market)
        await self.send_json({"type": "alert_set", "id": alert.id, **spec.describe()})
        await self.channel_layer.group_add(price_group(*spec.market), self.channel_name)

    async def _remove_alert(self, alert_id: str) -> None:
        alert = self.session.alerts.remove(alert_id)
        if alert is None:
            raise ProtocolError(f"Unknown alert: {alert_id:.40}")
        await self._release(alert.spec.market)
        await self.send_json({"type": "unsubscribed", "id": alert_id, "symbol": alert.spec.symbol,
                              "source": alert.spec.source, "message": f"Alert {alert_id} removed"})

    def _check_alerts(self, market: Market, ts: int, price: float) -> None:
        fired, done = self.session.alerts.check(market, ts, price)
        for message in fired:
            self._send(message)
        for _ in range(done):
            self._release_soon(market)

    def _release_soon(self, market: Market) -> None:
        task = asyncio.get_running_loop().create_task(self._release(market))
        self.releasing.add(task)
        task.add_done_callback(self.releasing.discard)

    async def _release(self, market: Market) -> None:
        """Leave a market's price group once neither a price subscription nor an alert needs it."""
        self.session.rewatch(market)
        if not self.session.needs_prices(market):
            await self.channel_layer.group_discard(price_group(*market), self.channel_name)

    HANDLERS = {
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "ping": on_ping,
        "auth": on_auth,
        "get_subscriptions": on_get_subscriptions,
        "alert": on_alert,
    }

    async def _snapshot(self, sub: Subscription, tracked: bool, tick) -> None:
        for message in await snapshot(sub, self.session, tracked, tick):
            await self.send_json(message)

    async def _send_with_indicators(self, indicators, update: dict) -> None:
        """A candle update with the indicators' values for that candle, computed on the stored
        candles (the same for every subscriber of this process asking for the same ones)."""
        message, problem = await with_indicators(indicators, update)
        if problem is not None:
            await self.error(problem)
        await self.send_json(message)

    # --- from the channel layer ----------------------------------------------------------------
    def deliver(self, event: dict) -> None:
        """A group message (price.update, ohlc.update, book.update), called by the channel layer's
        reader. The event is the same object for every local subscriber: it is rendered once, and
        each connection only adds its own `seq`."""
        if self.closing:
            return
        session = self.session
        if event["type"] == "price.update":
            data = event["data"]
            if session.watched and (data["source"], data["symbol"]) in session.watched:
                return self._deliver_watched(event)
            if session.is_new(data):
                self.outbox.emit(session.numbered(event.get(RENDERED) or rendered(event)))
            return
        if event["type"] == "book.update":
            data = event["data"]
            depth_ = session.book_depth.get((data["source"], data["symbol"]))
            if depth_ is not None:
                self.outbox.emit(session.numbered(rendered_book(event, depth_)))
            return
        if event["type"] == "ohlc.update" and self.indicators.wanted:
            data = event["data"]
            key = (data["source"], data["symbol"], data["timeframe"])
            if key in self.indicators.wanted:
                self.indicators.queue(key, data)
                return
        self.outbox.emit(session.numbered(event.get(RENDERED) or rendered(event)))

    def _deliver_watched(self, event: dict) -> None:
        """A price for a market with alerts or a filtered subscription: sent if subscribed to and
        the filters admit it (the same shared rendering), then checked by the market's alerts."""
        data = event["data"]
        market, ts, price = (data["source"], data["symbol"]), data["timestamp"], data["price"]
        filter_ = self.session.filters.get(market)
        if self.session.price_subscription(market) is not None and (filter_ is None or filter_.admits(ts, price)) \
                and self.session.is_new(data):
            if filter_ is not None:
                filter_.sent(ts, price)
            self.outbox.emit(self.session.numbered(event.get(RENDERED) or rendered(event)))
        self._check_alerts(market, ts, price)

    async def _heartbeat(self) -> None:
        interval = settings.WS_HEARTBEAT_SECONDS
        last_touch = last_key_check = time.monotonic()
        while True:
            await asyncio.sleep(min(interval, KEY_CHECK_SECONDS))
            now = time.monotonic()
            if self.raw_key is not None and now - last_key_check >= KEY_CHECK_SECONDS:
                last_key_check = now
                if not await auth.still_valid(self.raw_key):
                    await self.refuse("Invalid API key: revoked or expired", CLOSE_UNAUTHORIZED)
                    return
            if now - self.session.last_sent >= interval:
                await self.send_json({"type": "heartbeat", "timestamp": _now_iso()})
            if now - last_touch >= 60:
                last_touch = now
                await self._keep_polled()

    async def _keep_polled(self) -> None:
        """Keep the markets and books this connection follows polled (an on-demand poll and a book's
        watch last two minutes: renewed every minute)."""
        for sub in list(self.session.subscriptions):
            if sub.channel == "book":
                await database_sync_to_async(depth.watch)(sub.source, sub.symbol)
            else:
                await database_sync_to_async(markets.keep_polled)(sub.source, sub.symbol)
        for market in self.session.unpolled_alert_markets():
            await database_sync_to_async(markets.keep_polled)(*market)

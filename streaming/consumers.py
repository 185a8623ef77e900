"""The /ws consumer: validates, joins groups, sends a snapshot, forwards events."""

import asyncio
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from redis.exceptions import RedisError

from apikeys import services as api_keys
from apikeys.credentials import key_from_asgi
from cryptosite import handler, metrics
from market import selectors, services
from market.depth import services as depth
from market.domain.alerts import Alert, AlertSpec, window_ms
from market.domain.errors import MarketError
from market.indicators.services import latest_values
from market.payloads import candle_payload, price_payload

from .filters import PriceFilter
from .groups import book_group, ohlc_group, price_group
from .protocol import ProtocolError, Subscription, parse_alert_id, parse_alert_message, parse_message, parse_subscriptions
from .uvicorn_transport import SEND_NOW

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1011
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401  # a wrong, revoked or expired API key (4000 + HTTP's 401)
KEY_CHECK_SECONDS = 5.0  # how often an open connection's key is checked again (a revoke ends it)
RENDERED = "__rendered__"  # an event's JSON, rendered by its first local subscriber
RENDERED_BY_DEPTH = "__rendered_by_depth__"  # a book event's JSON per depth asked for


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def off_loop(fn):
    """A slow read (an exchange's order book, indicators over their warm-up candles) on the web
    threads' pool, not on the one database thread Channels gives every consumer of the process
    (where it would hold up everyone's subscribe)."""

    def call(*args):
        close_old_connections()
        try:
            return fn(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False, executor=handler.executor())


class _SentCounter:
    """The sent-messages metric in batches: one write of the shared (multi-process) counter per
    half second, not one per message, which was a sixth of the cost of a fan-out."""

    def __init__(self):
        self.count = 0
        self.loop = None  # the loop a flush is scheduled on (a test's loop may close before it runs)

    def add(self) -> None:
        self.count += 1
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            loop.call_later(0.5, self.flush)

    def flush(self) -> None:
        count, self.count, self.loop = self.count, 0, None
        metrics.WS_SENT.inc(count)


_sent = _SentCounter()

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


def start_alert(alert_id: str, spec: AlertSpec) -> Alert:
    """An alert on a listed market (404 otherwise), kept polled, that checks the prices stored
    after its newest one; a change_pct alert starts from the window's stored prices."""
    _tracked, tick = services.watch(spec.source, spec.symbol)
    history = selectors.price_points(spec.source, spec.symbol, selectors.now_ms() - window_ms(spec.window)) if spec.window else ()
    return Alert(alert_id, spec, tick.timestamp_ms if tick else -1, history)


def _group(sub: Subscription) -> str:
    if sub.channel == "book":
        return book_group(sub.source, sub.symbol)
    return price_group(sub.source, sub.symbol) if sub.channel == "prices" else ohlc_group(sub.source, sub.symbol, sub.timeframe)


def _rendered(event: dict) -> str:
    """An event's JSON, rendered by its first local subscriber and shared by the others."""
    rendered = event.get(RENDERED)
    if rendered is None:
        rendered = event[RENDERED] = json.dumps({"type": event["type"].replace(".", "_"), **event["data"]})
    return rendered


def _book_message(data: dict, depth_: int) -> dict:
    """A `book` message cut to a subscriber's depth (the bands are the fetched book's)."""
    return {"type": "book", **data, "depth": depth_, "bids": data["bids"][:depth_], "asks": data["asks"][:depth_]}


class PriceStreamConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop, made lean for fan-out. Channels waits on the client and on the
        channel layer at once, with a new task and a wake-up for every message; a price fanned out
        to thousands of subscribers paid that thousands of times. Here the client's events are
        dispatched from one loop, and the channel layer's reader hands group messages to deliver()
        directly (streaming.layer), which writes them out at once."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        # uvicorn's connection (streaming.uvicorn_transport) takes a message with a plain call;
        # any other server gets them in order through an outbox.
        self.send_now = scope.get("extensions", {}).get(SEND_NOW)
        self.outbox: deque[dict] = deque()
        self.draining: asyncio.Task | None = None
        self.channel_layer.attach(self.channel_name, self.deliver)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            self.channel_layer.detach(self.channel_name)
            if self.draining is not None:
                self.draining.cancel()

    async def connect(self) -> None:
        self.client_id = str(uuid.uuid4())
        self.seq = 0
        self.subscriptions: dict[Subscription, None] = {}
        # The newest price sent per (source, symbol): a subscriber never gets one it already has,
        # nor an older one after it (the snapshot and the broadcast of one tick can cross).
        self.newest: dict[tuple[str, str], int] = {}
        # Candle subscriptions that asked for indicators, by (source, symbol, timeframe).
        self.with_indicators: dict[tuple, tuple] = {}
        # Book subscriptions' depths, by (source, symbol).
        self.book_depth: dict[tuple[str, str], int] = {}
        # Candle updates waiting for their indicators, per series: the newest per candle, in order.
        self.indicator_pending: dict[tuple, dict[int, dict]] = {}
        self.indicator_tasks: dict[tuple, asyncio.Task] = {}
        # Alerts by id (ids are never reused on a connection), and the filters of filtered price
        # subscriptions by (source, symbol).
        self.alerts: dict[str, Alert] = {}
        self.alerts_set = 0
        self.filters: dict[tuple[str, str], PriceFilter] = {}
        # The markets whose prices take deliver()'s slow path, which sends only what was asked for:
        # those with an alert or a filter, and those whose price group was left (prices already on
        # their way still arrive), until they are a plain price subscription again. Every other
        # price takes the shared fast path.
        self.watched: set[tuple[str, str]] = set()
        self.releasing: set[asyncio.Task] = set()
        # When the client's latest messages arrived: more than the limit within any one second is
        # too many (a sliding window: a burst cannot hide across a fixed window's boundary).
        self.arrivals: deque[float] = deque(maxlen=settings.WS_MAX_MESSAGES_PER_SECOND)
        self.last_sent = time.monotonic()
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
            key = await database_sync_to_async(api_keys.use_key)(raw)
        except Exception as exc:  # the database away: the key cannot be checked, the client may retry
            log.warning("API key check of a /ws connection failed: %s", exc)
            await self.refuse("Service unavailable: the API key cannot be checked now", CLOSE_UNAVAILABLE)
            return False
        if key is None:
            await self.refuse("Invalid API key: wrong, revoked or expired", CLOSE_UNAUTHORIZED)
            return False
        self.api_key, self.raw_key = key, raw
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
        for task in getattr(self, "indicator_tasks", {}).values():
            task.cancel()
        for sub in list(getattr(self, "subscriptions", {})):
            await self.channel_layer.group_discard(_group(sub), self.channel_name)
        for market in {a.spec.market for a in getattr(self, "alerts", {}).values()}:
            await self.channel_layer.group_discard(price_group(*market), self.channel_name)

    async def send_json(self, payload: dict) -> None:
        self._emit(self._numbered(json.dumps(payload)))

    def _numbered(self, rendered: str) -> str:
        """A rendered JSON object with this connection's next `seq` as its last member."""
        self.seq += 1
        self.last_sent = time.monotonic()
        return f'{rendered[:-1]}, "seq": {self.seq}}}'

    def _emit(self, text: str | None, close: dict | None = None) -> None:
        """Hand a message (or the close) to the client, after everything emitted before it."""
        if text is not None:
            _sent.add()
        if self.send_now is not None and not self.outbox and close is None:
            self.send_now(text)
            return
        self.outbox.append(close or {"type": "websocket.send", "text": text})
        if self.draining is None or self.draining.done():
            self.draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self.outbox:
            message = self.outbox.popleft()
            if message["type"] == "websocket.send" and self.send_now is not None:
                self.send_now(message["text"])
            else:
                await self.base_send(message)

    async def close(self, code=None, reason=None) -> None:
        message = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = code
        if reason:
            message["reason"] = reason
        self._emit(None, close=message)

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
        if self._over_rate():
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

    def _over_rate(self) -> bool:
        now = time.monotonic()
        over = len(self.arrivals) == self.arrivals.maxlen and now - self.arrivals[0] < 1.0
        self.arrivals.append(now)
        return over

    async def on_subscribe(self, message: dict) -> None:
        subs = parse_subscriptions(message)
        for sub in subs:
            same = next((s for s in self.subscriptions if s.series == sub.series), None)
            if same is not None:  # already followed: the indicators or depth asked for now replace the earlier ones
                del self.subscriptions[same]
                self.subscriptions[sub] = None
                self._follow_indicators(sub)
                self._follow_filters(sub)
                if sub.channel == "book":
                    self.book_depth[(sub.source, sub.symbol)] = sub.depth
                await self._confirm(sub, "subscribed")
                if sub.indicators != same.indicators or sub.depth != same.depth:
                    await self._snapshot(sub, True, None)
                continue
            if len(self.subscriptions) >= settings.WS_MAX_SUBSCRIPTIONS:
                return await self.refuse(
                    f"Subscription limit exceeded: at most {settings.WS_MAX_SUBSCRIPTIONS} per connection", CLOSE_POLICY
                )
            if sub.channel == "book":
                await self._subscribe_book(sub)
                continue
            try:
                tracked, tick = await database_sync_to_async(services.watch)(sub.source, sub.symbol)
            except MarketError as exc:
                await self.error(str(exc))
                continue
            self.subscriptions[sub] = None
            self._follow_indicators(sub)
            self._follow_filters(sub)
            await self.channel_layer.group_add(_group(sub), self.channel_name)
            await self._confirm(sub, "subscribed")
            await self._snapshot(sub, tracked, tick)

    async def _subscribe_book(self, sub: Subscription) -> None:
        """A book: its snapshot now (the symbol checked), then every change while it is watched."""
        try:
            book = await off_loop(depth.order_book)(sub.source, sub.symbol, sub.depth)
            await off_loop(depth.watch)(sub.source, sub.symbol)
        except MarketError as exc:
            await self.error(str(exc))
            return
        self.subscriptions[sub] = None
        self.book_depth[(sub.source, sub.symbol)] = sub.depth
        await self.channel_layer.group_add(_group(sub), self.channel_name)
        await self._confirm(sub, "subscribed")
        await self.send_json(_book_message(book, sub.depth))

    async def on_unsubscribe(self, message: dict) -> None:
        # An alert goes by its id; a symbol's subscriptions go without its alerts (an alert needs
        # no subscription, and one that was set stays until it fires or is removed).
        if message.get("id") is not None:
            return await self._remove_alert(parse_alert_id(message))
        for sub in parse_subscriptions(message):
            matching = [s for s in self.subscriptions if s.symbol == sub.symbol and (
                "source" not in message or s.source == sub.source)]
            for s in matching:
                del self.subscriptions[s]
                self.with_indicators.pop((s.source, s.symbol, s.timeframe), None)
                if s.channel == "book":
                    self.book_depth.pop((s.source, s.symbol), None)
                if s.channel == "prices":
                    self.newest.pop((s.source, s.symbol), None)
                    self.filters.pop((s.source, s.symbol), None)
                    await self._release((s.source, s.symbol))
                else:
                    await self.channel_layer.group_discard(_group(s), self.channel_name)
            await self._confirm(sub, "unsubscribed")

    async def on_auth(self, message: dict) -> None:
        raw = message.get("key")
        if not isinstance(raw, str):
            raise ProtocolError("Missing key: {\"type\": \"auth\", \"key\": \"<API key>\"}")
        await self._authenticate(raw)

    # --- alerts ----------------------------------------------------------------------------------
    async def on_alert(self, message: dict) -> None:
        spec = parse_alert_message(message)
        if len(self.alerts) >= settings.WS_MAX_ALERTS:
            return await self.refuse(f"Alert limit exceeded: at most {settings.WS_MAX_ALERTS} alerts per connection", CLOSE_POLICY)
        self.alerts_set += 1
        try:
            alert = await off_loop(start_alert)(f"a{self.alerts_set}", spec)
        except MarketError as exc:
            return await self.error(str(exc))
        # Watched before the group is joined: the market's prices are then sent only if subscribed.
        self.alerts[alert.id] = alert
        self._rewatch(spec.market)
        await self.send_json({"type": "alert_set", "id": alert.id, **spec.describe()})
        await self.channel_layer.group_add(price_group(*spec.market), self.channel_name)

    async def _remove_alert(self, alert_id: str) -> None:
        alert = self.alerts.pop(alert_id, None)
        if alert is None:
            raise ProtocolError(f"Unknown alert: {alert_id:.40}")
        await self._release(alert.spec.market)
        await self.send_json({"type": "unsubscribed", "id": alert_id, "symbol": alert.spec.symbol,
                              "source": alert.spec.source, "message": f"Alert {alert_id} removed"})

    def _check_alerts(self, market: tuple[str, str], ts: int, price: float) -> None:
        for alert in [a for a in self.alerts.values() if a.spec.market == market]:
            fired = alert.check(ts, price)
            if fired is not None:
                self._emit(self._numbered(json.dumps({"type": "alert", "id": alert.id, **alert.spec.describe(), **fired})))
            if alert.done:
                del self.alerts[alert.id]
                task = asyncio.get_running_loop().create_task(self._release(market))
                self.releasing.add(task)
                task.add_done_callback(self.releasing.discard)

    async def _release(self, market: tuple[str, str]) -> None:
        """Leave a market's price group once neither a price subscription nor an alert needs it."""
        self._rewatch(market)
        if self._price_subscription(market) is None and not any(a.spec.market == market for a in self.alerts.values()):
            await self.channel_layer.group_discard(price_group(*market), self.channel_name)

    def _rewatch(self, market: tuple[str, str]) -> None:
        """The fast path for a plain price subscription without alerts, the slow path otherwise."""
        plain = market not in self.filters and self._price_subscription(market) is not None
        if plain and not any(a.spec.market == market for a in self.alerts.values()):
            self.watched.discard(market)
        else:
            self.watched.add(market)

    def _price_subscription(self, market: tuple[str, str]) -> Subscription | None:
        return next((s for s in self.subscriptions if s.channel == "prices" and (s.source, s.symbol) == market), None)

    def _follow_filters(self, sub: Subscription) -> None:
        """A price subscription's filters; subscribing again replaces them (what was sent stays sent)."""
        if sub.channel != "prices":
            return
        market = (sub.source, sub.symbol)
        previous = self.filters.pop(market, None)
        if sub.filtered:
            self.filters[market] = PriceFilter(sub.min_interval, sub.min_change_pct, previous.last if previous else None)
        self._rewatch(market)

    async def on_ping(self, message: dict) -> None:
        await self.send_json({"type": "pong", "timestamp": _now_iso()})

    async def on_get_subscriptions(self, message: dict) -> None:
        symbols = list(dict.fromkeys(s.symbol for s in self.subscriptions))
        detail = [
            {"symbol": s.symbol, "source": s.source, "channel": s.channel, **({"timeframe": s.timeframe} if s.timeframe else {}),
             **({"indicators": [i.key for i in s.indicators]} if s.indicators else {}),
             **({"depth": s.depth} if s.depth else {}),
             **({"min_interval": s.min_interval, "min_change_pct": s.min_change_pct} if s.filtered else {})}
            for s in self.subscriptions
        ]
        alerts = [{"id": a.id, **a.spec.describe()} for a in self.alerts.values()]
        await self.send_json({"type": "subscriptions", "symbols": symbols, "subscriptions": detail, "alerts": alerts})

    HANDLERS = {
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "ping": on_ping,
        "auth": on_auth,
        "get_subscriptions": on_get_subscriptions,
        "alert": on_alert,
    }

    async def _confirm(self, sub: Subscription, kind: str) -> None:
        verb = "Subscribed to" if kind == "subscribed" else "Unsubscribed from"
        payload = {"type": kind, "symbol": sub.symbol, "message": f"{verb} {sub.symbol} updates", "source": sub.source}
        if sub.channel != "prices":
            payload.update(channel=sub.channel, timeframe=sub.timeframe)
        if sub.indicators:
            payload["indicators"] = [i.key for i in sub.indicators]
        if sub.depth:
            payload["depth"] = sub.depth
        if sub.filtered and kind == "subscribed":
            payload.update(min_interval=sub.min_interval, min_change_pct=sub.min_change_pct)
        await self.send_json(payload)

    async def _snapshot(self, sub: Subscription, tracked: bool, tick) -> None:
        if sub.channel == "book":
            try:
                book = await off_loop(depth.order_book)(sub.source, sub.symbol, sub.depth)
            except MarketError as exc:
                await self.error(str(exc))
                return
            await self.send_json(_book_message(book, sub.depth))
            return
        if sub.channel == "prices":
            if tick is None and not tracked:
                try:
                    tick = await database_sync_to_async(services.fresh_or_live_tick)(sub.source, sub.symbol)
                except MarketError:
                    tick = None
            if tick is not None and self._is_new(payload := price_payload(tick)):
                if (filter_ := self.filters.get((sub.source, sub.symbol))) is not None:
                    filter_.sent(payload["timestamp"], payload["price"])
                await self.send_json({"type": "price_update", **payload})
            return
        try:
            candles = await database_sync_to_async(services.candles_for_request)(
                sub.source, sub.symbol, sub.timeframe, 1, None, None
            )
        except MarketError as exc:  # the exchange failed: say so, keep the subscription and the connection
            await self.error(f"No candle yet for {sub.symbol} {sub.timeframe} on {sub.source}: {exc}")
            return
        if candles:
            update = {"symbol": sub.symbol, "source": sub.source, "timeframe": sub.timeframe,
                      "candle": candle_payload(candles[-1])}
            if sub.indicators:
                await self._send_with_indicators(sub.indicators, update)
            else:
                await self.send_json({"type": "ohlc_update", **update})

    # --- indicators on the candle channel ---------------------------------------------------------
    def _follow_indicators(self, sub: Subscription) -> None:
        if sub.channel == "ohlc":
            key = (sub.source, sub.symbol, sub.timeframe)
            if sub.indicators:
                self.with_indicators[key] = sub.indicators
            else:
                self.with_indicators.pop(key, None)

    async def _send_with_indicators(self, indicators, update: dict) -> None:
        """A candle update with the indicators' values for that candle, computed on the stored
        candles (the same for every subscriber of this process asking for the same ones)."""
        try:
            values = await indicator_values(update, indicators)
        except Exception as exc:  # the exchange, the database or Redis away: the candle goes out without them
            await self.error(f"Indicators unavailable for {update['symbol']} {update['timeframe']}: {exc}")
            values = None
        await self.send_json({"type": "ohlc_update", **update, "indicators": values})

    def _queue_indicators(self, key: tuple, data: dict) -> None:
        """Keep the newest update per candle; one worker per series sends them in order, so a slow
        computation makes updates wait (and merge), never pile up."""
        self.indicator_pending.setdefault(key, {})[data["candle"]["timestamp"]] = data
        task = self.indicator_tasks.get(key)
        if task is None or task.done():
            self.indicator_tasks[key] = asyncio.get_running_loop().create_task(self._send_pending_indicators(key))

    async def _send_pending_indicators(self, key: tuple) -> None:
        while self.indicator_pending.get(key):
            pending = self.indicator_pending[key]
            data = pending.pop(min(pending))
            indicators = self.with_indicators.get(key)
            if indicators and not self.closing:
                await self._send_with_indicators(indicators, data)

    # --- from the channel layer ----------------------------------------------------------------
    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every handler: a hop to its one
        # database thread per message. Every query here goes through database_sync_to_async,
        # which closes stale connections around itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def _is_new(self, price: dict) -> bool:
        """Whether this price is newer than any sent for its market; if so, it is the newest now."""
        market = (price["source"], price["symbol"])
        if price["timestamp"] <= self.newest.get(market, -1):
            return False
        self.newest[market] = price["timestamp"]
        return True

    def deliver(self, event: dict) -> None:
        """A group message (price.update, ohlc.update), called by the channel layer's reader. The
        event is the same object for every local subscriber: it is rendered once, and each
        connection only adds its own `seq`."""
        if self.closing:
            return
        if event["type"] == "price.update":
            data = event["data"]
            if self.watched and (data["source"], data["symbol"]) in self.watched:
                return self._deliver_watched(event)
            if self._is_new(data):
                self._emit(self._numbered(event.get(RENDERED) or _rendered(event)))
            return
        if event["type"] == "book.update":
            data = event["data"]
            depth_ = self.book_depth.get((data["source"], data["symbol"]))
            if depth_ is None:
                return
            by_depth = event.setdefault(RENDERED_BY_DEPTH, {})
            if depth_ not in by_depth:
                by_depth[depth_] = json.dumps(_book_message(data, depth_))
            self._emit(self._numbered(by_depth[depth_]))
            return
        if event["type"] == "ohlc.update" and self.with_indicators:
            data = event["data"]
            key = (data["source"], data["symbol"], data["timeframe"])
            if key in self.with_indicators:
                self._queue_indicators(key, data)
                return
        self._emit(self._numbered(event.get(RENDERED) or _rendered(event)))

    def _deliver_watched(self, event: dict) -> None:
        """A price for a market with alerts or a filtered subscription: sent if subscribed to and
        the filters admit it (the same shared rendering), then checked by the market's alerts."""
        data = event["data"]
        market, ts, price = (data["source"], data["symbol"]), data["timestamp"], data["price"]
        filter_ = self.filters.get(market)
        if self._price_subscription(market) is not None and (filter_ is None or filter_.admits(ts, price)) and self._is_new(data):
            if filter_ is not None:
                filter_.sent(ts, price)
            self._emit(self._numbered(event.get(RENDERED) or _rendered(event)))
        self._check_alerts(market, ts, price)

    async def _heartbeat(self) -> None:
        interval = settings.WS_HEARTBEAT_SECONDS
        last_touch = last_key_check = time.monotonic()
        while True:
            await asyncio.sleep(min(interval, KEY_CHECK_SECONDS))
            now = time.monotonic()
            if self.raw_key is not None and now - last_key_check >= KEY_CHECK_SECONDS:
                last_key_check = now
                try:
                    verdict = await database_sync_to_async(api_keys.check_key)(self.raw_key)
                except Exception as exc:  # the database or Redis away: asked again at the next check
                    log.warning("API key check of a /ws connection failed: %s", exc)
                else:
                    if verdict is None:
                        await self.refuse("Invalid API key: revoked or expired", CLOSE_UNAUTHORIZED)
                        return
            if now - self.last_sent >= interval:
                await self.send_json({"type": "heartbeat", "timestamp": _now_iso()})
            if now - last_touch >= 60:
                last_touch = now
                for sub in list(self.subscriptions):
                    if sub.channel == "book":
                        await database_sync_to_async(depth.watch)(sub.source, sub.symbol)
                    else:
                        await database_sync_to_async(services.keep_polled)(sub.source, sub.symbol)
                polled = {(s.source, s.symbol) for s in self.subscriptions if s.channel != "book"}
                for market in {a.spec.market for a in self.alerts.values()} - polled:
                    await database_sync_to_async(services.keep_polled)(*market)

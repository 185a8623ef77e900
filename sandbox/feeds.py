"""The sandbox exchange's live feeds: a loopback WebSocket server speaking Binance's combined
streams (/binance/stream), Coinbase Exchange's feed (/coinbase), Kraken's v2 API (/kraken/v2), OKX's
public v5 API (/okx/ws/v5/public, sandbox.okx_feed) and Bybit's public v5 spot stream
(/bybit/v5/public/spot, sandbox.bybit_feed) over the same simulated market as the sandbox's REST
API, with fault switches.

Every market trades every `trade_period` seconds (the price the REST API prints at that moment;
trade ids grow by one per trade and market, shared by every connection), and candles are pushed
every `candle_period` seconds (Binance's kline cadence), with the final candle of a period marked
closed. Faults, per exchange, set through the REST sandbox (POST /_sandbox/feed-faults
{"exchange": "binance", "mode": "drop"|"stall"|"garbage"|"skip"}, DELETE to clear):

- drop: every connection is cut, and new ones are cut as they open;
- stall: nothing is sent (nor any request answered) while the connections stay open;
- garbage: every message is replaced by bytes that are not JSON;
- skip: one trade id is skipped on every market, once (the switch then clears itself).
"""

import asyncio
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from market.domain.timeframes import TIMEFRAMES, align

from . import bybit_feed, okx_feed
from .faults import FeedFaults
from .server import Market, fmt8

log = logging.getLogger(__name__)

KRAKEN_INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d", 10080: "1w", 21600: None}
GARBAGE = '{"stream": "btcusdt@aggTrade", "data": {"e": \x00'
EXCHANGES = ("binance", "coinbase", "kraken", "okx", "bybit")
# The exchanges served at one path only (the others take any path under their name).
PATHS = {"okx": "/okx/ws/v5/public", "bybit": "/bybit/v5/public/spot"}
# The exchanges whose client frames a module of their own answers: request(server, client, raw).
REQUESTS = {"okx": okx_feed.request, "bybit": bybit_feed.request}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(value: Decimal) -> float:
    """Kraken's v2 prints JSON numbers; a float keeps every digit the sandbox prints."""
    return float(value)


class Client:
    """One connection and what it is subscribed to."""

    def __init__(self, ws: ServerConnection, exchange: str):
        self.ws, self.exchange = ws, exchange
        self.trades: set[str] = set()  # our symbols (OKX: its instIds; Bybit: its topics)
        self.candles: set[tuple[str, str]] = set()  # (symbol, timeframe)
        self.last_open: dict[tuple[str, str], int] = {}

    async def send(self, faults: FeedFaults, message: dict | str) -> None:
        mode = faults.mode(self.exchange)
        if mode == "stall":
            return
        if mode == "garbage":
            message = GARBAGE
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            pass


class FeedServer:
    def __init__(self, market: Market, faults: FeedFaults, trade_period: float = 0.1, candle_period: float = 2.0):
        self.market, self.faults = market, faults
        self.trade_period, self.candle_period = trade_period, candle_period
        self.clients: set[Client] = set()
        self.trade_ids: dict[tuple[str, str], int] = {}
        self.listed = set(market.symbols)

    # --- names -------------------------------------------------------------------------------
    def binance_market(self, symbol: str) -> str:
        return f"{symbol}USDT"

    def kraken_pair(self, symbol: str) -> str:
        return f"{symbol}/USD"

    def binance_symbol(self, stream_market: str) -> str | None:
        upper = stream_market.upper()
        if upper.endswith("USDT") and upper[:-4] in self.listed:
            return upper[:-4]
        return None

    # --- connections ------------------------------------------------------------------------
    async def handler(self, ws: ServerConnection) -> None:
        url = urlparse(ws.request.path)
        exchange = url.path.strip("/").split("/")[0]
        if exchange not in EXCHANGES or PATHS.get(exchange, url.path.rstrip("/")) != url.path.rstrip("/"):
            await ws.close(1008, "unknown path")
            return
        if self.faults.mode(exchange) == "drop":
            ws.transport.abort()
            return
        client = Client(ws, exchange)
        self.clients.add(client)
        self.faults.connections[exchange] = self.faults.connections.get(exchange, 0) + 1
        try:
            if exchange == "binance":
                for stream in parse_qs(url.query).get("streams", [""])[0].split("/"):
                    self._binance_stream(client, stream, True)
            if exchange == "kraken":
                await client.send(self.faults, {"channel": "status", "type": "update", "data": [
                    {"api_version": "v2", "connection_id": uuid.uuid4().int >> 64, "system": "online", "version": "2.0.0"}]})
            async for raw in ws:
                if self.faults.mode(exchange) == "stall":
                    continue
                if exchange in REQUESTS:
                    await REQUESTS[exchange](self, client, raw)
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    await self._invalid_json(client)
                    continue
                await getattr(self, f"_{exchange}_request")(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def _invalid_json(self, client: Client) -> None:
        if client.exchange == "binance":
            await client.send(self.faults, {"code": 3, "msg": "Invalid JSON: expected value", "id": None})
        elif client.exchange == "coinbase":
            await client.send(self.faults, {"type": "error", "message": "Malformed JSON", "reason": "invalid json"})
        else:
            await client.send(self.faults, {"error": "EGeneral:Invalid arguments", "success": False})

    # --- Binance ----------------------------------------------------------------------------
    def _binance_stream(self, client: Client, stream: str, on: bool) -> bool:
        market, _, kind = stream.partition("@")
        symbol = self.binance_symbol(market)
        if symbol is None or not kind:
            return False
        if kind == "aggTrade":
            (client.trades.add if on else client.trades.discard)(symbol)
            return True
        if kind.startswith("kline_") and kind[6:] in TIMEFRAMES:
            (client.candles.add if on else client.candles.discard)((symbol, kind[6:]))
            return True
        return False

    async def _binance_request(self, client: Client, message: dict) -> None:
        method, req = message.get("method"), message.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            params = message.get("params")
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                await client.send(self.faults, {"code": 2, "msg": "Invalid request: params must be a list of streams", "id": req})
                return
            bad = [p for p in params if not self._binance_stream(client, p, method == "SUBSCRIBE")]
            if bad:
                await client.send(self.faults, {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}", "id": req})
                return
            await client.send(self.faults, {"result": None, "id": req})
        elif method == "LIST_SUBSCRIPTIONS":
            streams = [f"{self.binance_market(s).lower()}@aggTrade" for s in sorted(client.trades)]
            streams += [f"{self.binance_market(s).lower()}@kline_{tf}" for s, tf in sorted(client.candles)]
            await client.send(self.faults, {"result": streams, "id": req})
        else:
            await client.send(self.faults, {"code": 2, "msg": f"Invalid request: unknown method {method}", "id": req})

    # --- Coinbase ---------------------------------------------------------------------------
    async def _coinbase_request(self, client: Client, message: dict) -> None:
        kind = message.get("type")
        products = message.get("product_ids") or []
        channels = message.get("channels") or []
        if kind not in ("subscribe", "unsubscribe"):
            await client.send(self.faults, {"type": "error", "message": "Failed to subscribe", "reason": f"{kind} is not a valid type"})
            return
        bad = [p for p in products if not (isinstance(p, str) and p.endswith("-USD") and p[:-4] in self.listed)]
        if bad or not products:
            await client.send(self.faults, {"type": "error", "message": "Failed to subscribe",
                                            "reason": f"{bad[0] if bad else 'product_ids'} is not a valid product"})
            return
        symbols = [p[:-4] for p in products]
        if "matches" in channels:
            for symbol in symbols:
                (client.trades.add if kind == "subscribe" else client.trades.discard)(symbol)
        await client.send(self.faults, {"type": "subscriptions", "channels": [
            {"name": name, "product_ids": [f"{s}-USD" for s in sorted(client.trades)]} for name in ("matches", "heartbeat")]})
        if kind == "subscribe" and "matches" in channels:
            now = self.market.now_ms()
            for symbol in symbols:
                await client.send(self.faults, self._coinbase_match(symbol, self.trade_ids.setdefault(("coinbase", symbol), 1000), now,
                                                                    "last_match"))

    def _coinbase_match(self, symbol: str, trade_id: int, now: int, kind: str = "match") -> dict:
        return {"type": kind, "trade_id": trade_id, "maker_order_id": str(uuid.UUID(int=trade_id * 2 + 1)),
                "taker_order_id": str(uuid.UUID(int=trade_id * 2)), "side": "buy", "size": "0.01000000",
                "price": str(self.market.price("coinbase", symbol)), "product_id": f"{symbol}-USD",
                "sequence": trade_id * 3, "time": _iso(now)}

    # --- Kraken -----------------------------------------------------------------------------
    async def _kraken_request(self, client: Client, message: dict) -> None:
        method, req = message.get("method"), message.get("req_id")
        now = _iso(self.market.now_ms())
        if method == "ping":
            await client.send(self.faults, {"method": "pong", "req_id": req, "time_in": now, "time_out": now})
            return
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        channel, symbols = params.get("channel"), params.get("symbol")
        if method not in ("subscribe", "unsubscribe") or channel not in ("trade", "ohlc") or not isinstance(symbols, list):
            await client.send(self.faults, {"error": "EGeneral:Invalid arguments", "method": method, "req_id": req,
                                            "success": False, "time_in": now, "time_out": now})
            return
        timeframe = None
        if channel == "ohlc":
            timeframe = KRAKEN_INTERVALS.get(params.get("interval", 1))
            if timeframe is None:
                await client.send(self.faults, {"error": "EGeneral:Invalid arguments:interval", "method": method,
                                                "req_id": req, "success": False, "time_in": now, "time_out": now})
                return
        for pair in symbols:
            base = pair.split("/")[0] if isinstance(pair, str) and pair.endswith("/USD") else None
            if base not in self.listed:
                await client.send(self.faults, {"error": "Currency pair not supported", "method": method, "req_id": req,
                                                "success": False, "symbol": pair, "time_in": now, "time_out": now})
                continue
            on = method == "subscribe"
            if channel == "trade":
                (client.trades.add if on else client.trades.discard)(base)
            else:
                (client.candles.add if on else client.candles.discard)((base, timeframe))
            result = {"channel": channel, "symbol": pair, "snapshot": bool(params.get("snapshot", True))}
            if channel == "ohlc":
                result["interval"] = params.get("interval", 1)
            await client.send(self.faults, {"method": method, "req_id": req, "result": result, "success": True,
                                            "time_in": now, "time_out": now})
            if on and channel == "ohlc" and params.get("snapshot", True):
                row = self._kraken_candle(base, timeframe, self.market.now_ms(), params.get("interval", 1))
                await client.send(self.faults, {"channel": "ohlc", "type": "snapshot", "data": [row]})

    def _kraken_candle(self, symbol: str, timeframe: str, now: int, interval: int, open_time: int | None = None) -> dict:
        start = align(now, timeframe) if open_time is None else open_time
        c = self.market.candles("kraken", symbol, timeframe, start, start)[0]
        return {"symbol": self.kraken_pair(symbol), "open": _num(c.open), "high": _num(c.high), "low": _num(c.low),
                "close": _num(c.close), "trades": 10, "volume": _num(c.volume), "vwap": _num(c.close),
                "interval_begin": _iso(c.open_time), "interval": interval, "timestamp": _iso(now)}

    # --- the market's motion ------------------------------------------------------------------
    async def trade_forever(self) -> None:
        while True:
            started = time.monotonic()
            now = self.market.now_ms()
            skip = {ex: self.faults.take_skip(ex) for ex in EXCHANGES}
            trades: dict[tuple[str, str], int] = {}
            for client in list(self.clients):
                for symbol in client.trades:
                    key = (client.exchange, symbol)
                    if key not in trades:
                        step = 2 if skip[client.exchange] else 1
                        self.trade_ids[key] = trades[key] = self.trade_ids.get(key, 1000) + step
            for client in list(self.clients):
                if self.faults.mode(client.exchange) == "drop":
                    client.ws.transport.abort()
                    continue
                for symbol in list(client.trades):
                    trade_id = trades.get((client.exchange, symbol))
                    if trade_id is not None:  # None: subscribed since this round's trades were made
                        await client.send(self.faults, self._trade(client.exchange, symbol, trade_id, now))
            await asyncio.sleep(max(0.0, self.trade_period - (time.monotonic() - started)))

    def _trade(self, exchange: str, symbol: str, trade_id: int, now: int) -> dict:
        if exchange == "binance":
            market = self.binance_market(symbol)
            return {"stream": f"{market.lower()}@aggTrade", "data": {
                "e": "aggTrade", "E": now, "s": market, "a": trade_id, "p": fmt8(self.market.price("binance", symbol)),
                "q": "0.01000000", "f": trade_id * 2, "l": trade_id * 2, "T": now, "m": False, "M": True}}
        if exchange == "coinbase":
            return self._coinbase_match(symbol, trade_id, now)
        if exchange == "okx":
            return okx_feed.trade(self.market, symbol, trade_id, now)
        if exchange == "bybit":
            return bybit_feed.trade(self.market, symbol, trade_id, now)
        return {"channel": "trade", "type": "update", "data": [{
            "symbol": self.kraken_pair(symbol), "side": "buy", "price": _num(self.market.price("kraken", symbol)),
            "qty": 0.01, "ord_type": "market", "trade_id": trade_id, "timestamp": _iso(now)}]}

    async def candles_forever(self) -> None:
        while True:
            await asyncio.sleep(self.candle_period)
            now = self.market.now_ms()
            for client in list(self.clients):
                for symbol, timeframe in list(client.candles):
                    for message in self._candle_updates(client, symbol, timeframe, now):
                        await client.send(self.faults, message)

    def _candle_updates(self, client: Client, symbol: str, timeframe: str, now: int) -> list[dict]:
        """The candle as it stands; when a new period began, the previous one's final values first."""
        current = align(now, timeframe)
        previous = client.last_open.get((symbol, timeframe))
        client.last_open[(symbol, timeframe)] = current
        opens = [previous, current] if previous is not None and previous != current else [current]
        out = []
        for open_time in opens:
            if client.exchange == "binance":
                out.append(self._kline(symbol, timeframe, open_time, now))
            elif client.exchange == "kraken":
                interval = TIMEFRAMES[timeframe] // 60_000
                out.append({"channel": "ohlc", "type": "update",
                            "data": [self._kraken_candle(symbol, timeframe, now, interval, open_time)]})
        return out

    def _kline(self, symbol: str, timeframe: str, open_time: int, now: int) -> dict:
        market = self.binance_market(symbol)
        c = self.market.candles("binance", symbol, timeframe, open_time, open_time)[0]
        size = TIMEFRAMES[timeframe]
        return {"stream": f"{market.lower()}@kline_{timeframe}", "data": {"e": "kline", "E": now, "s": market, "k": {
            "t": c.open_time, "T": c.open_time + size - 1, "s": market, "i": timeframe, "f": 100, "L": 200,
            "o": fmt8(c.open), "c": fmt8(c.close), "h": fmt8(c.high), "l": fmt8(c.low), "v": fmt8(c.volume),
            "n": 100, "x": open_time + size <= now, "q": fmt8(c.volume * c.close), "V": fmt8(c.volume / 2),
            "Q": fmt8(c.volume * c.close / 2), "B": "0"}}}

    async def heartbeat_forever(self) -> None:
        """Coinbase's heartbeat channel and Kraken's heartbeat: one message a second."""
        while True:
            await asyncio.sleep(1.0)
            now = self.market.now_ms()
            for client in list(self.clients):
                if client.exchange == "coinbase":
                    for symbol in list(client.trades):
                        last = self.trade_ids.setdefault(("coinbase", symbol), 1000)
                        await client.send(self.faults, {"type": "heartbeat", "sequence": last * 3 + 1, "last_trade_id": last,
                                                        "product_id": f"{symbol}-USD", "time": _iso(now)})
                elif client.exchange == "kraken" and (client.trades or client.candles):
                    await client.send(self.faults, {"channel": "heartbeat"})

    async def serve(self, host: str, port: int, ready: threading.Event, bound: list) -> None:
        self.stopping = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        async with serve(self.handler, host, port, ping_interval=20, ping_timeout=20, close_timeout=1) as server:
            bound.append(server.sockets[0].getsockname()[1])
            ready.set()
            motion = [asyncio.create_task(c) for c in (self.trade_forever(), self.candles_forever(), self.heartbeat_forever())]
            await self.stopping.wait()
            for task in motion:
                task.cancel()
            for client in list(self.clients):
                client.ws.transport.abort()

    def stop(self) -> None:
        """Stop serving (from any thread)."""
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)


def start_feed_server(market: Market, faults: FeedFaults, host: str = "127.0.0.1", port: int = 0,
                      trade_period: float = 0.1, candle_period: float = 2.0) -> FeedServer:
    """Serve the feeds from a thread of this process (`.port`, `.stop()`)."""
    server = FeedServer(market, faults, trade_period, candle_period)
    ready, bound = threading.Event(), []
    server.thread = threading.Thread(target=lambda: asyncio.run(server.serve(host, port, ready, bound)), daemon=True,
                                     name="sandbox-feeds")
    server.thread.start()
    if not ready.wait(15):
        raise RuntimeError("the sandbox feed server did not start")
    server.port = bound[0]
    return server

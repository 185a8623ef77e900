"""The sandbox exchange: a loopback HTTP server that speaks the public REST wire formats of
Binance, Coinbase Exchange, Kraken, OKX, Bybit and CoinGecko over the simulated market, with fault
switches.

Paths are prefixed by exchange: /binance/api/v3/..., /coinbase/products..., /kraken/0/public/...,
/okx/api/v5/..., /bybit/v5/..., /coingecko/api/v3/... (OKX, Bybit and CoinGecko live in modules of
their own: sandbox.okx, sandbox.bybit, sandbox.coingecko).
Faults: POST /_sandbox/faults {"exchange": "binance", "mode": "timeout"|"error"|"ratelimit"|
"malformed"|"drop"|"latency", "status": 503, "retry_after": 5, "latency": 2.0};
DELETE /_sandbox/faults clears them; GET /_sandbox/stats counts requests per exchange (and, of
those, requests for the latest prices).
The live feeds (sandbox.feeds) have switches of their own: POST /_sandbox/feed-faults
{"exchange": "kraken", "mode": "drop"|"stall"|"garbage"|"skip"}; DELETE /_sandbox/feed-faults.
"""

import json
import logging
import threading
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from market.domain.candles import Candle
from market.domain.timeframes import TIMEFRAMES

from . import bybit, coingecko, okx
from . import simulation as sim
from .faults import FeedFaults

log = logging.getLogger(__name__)

# Each exchange quotes the same market a hair apart, as real venues do.
PRICE_FACTOR = {"binance": Decimal("1"), "coinbase": Decimal("1.0004"), "kraken": Decimal("0.9997"),
                "okx": Decimal("1.0002"), "bybit": Decimal("0.9999"), "coingecko": Decimal("1.0001")}
# The venues served by modules of their own: serve(handler, path, query).
VENUES = {"okx": okx.serve, "bybit": bybit.serve, "coingecko": coingecko.serve}
KRAKEN_NAMES = {"BTC": ("XXBTZUSD", "XBTUSD", "XBT"), "ETH": ("XETHZUSD", "ETHUSD", "ETH"),
                "DOGE": ("XDGUSD", "XDGUSD", "XDG")}
COINBASE_GRANULARITY = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 21600: None, 86400: "1d"}
KRAKEN_INTERVAL = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d", 10080: "1w"}


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_exchange: dict[str, dict] = {}
        self.requests: dict[str, int] = {}
        self.prices: dict[str, int] = {}  # of those, requests for the latest prices (the poller's)

    def set(self, exchange: str, spec: dict) -> None:
        with self.lock:
            self.by_exchange[exchange] = spec

    def clear(self, exchange: str | None = None) -> None:
        with self.lock:
            if exchange:
                self.by_exchange.pop(exchange, None)
            else:
                self.by_exchange.clear()

    def get(self, exchange: str, path: str = "") -> dict | None:
        with self.lock:
            self.requests[exchange] = self.requests.get(exchange, 0) + 1
            if path.endswith(("/ticker/price", "/ticker", "/Ticker", "/tickers", "/simple/price")):
                self.prices[exchange] = self.prices.get(exchange, 0) + 1
            return self.by_exchange.get(exchange)


class Market:
    """What the sandbox lists and the prices each exchange prints."""

    def __init__(self, symbols: tuple[str, ...] = sim.SYMBOLS, clock=time.time):
        self.symbols = symbols
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def scale(self, exchange: str, symbol: str, value: Decimal) -> Decimal:
        return (value * PRICE_FACTOR[exchange]).quantize(sim.tick_size(symbol), rounding=ROUND_HALF_EVEN)

    def price(self, exchange: str, symbol: str) -> Decimal:
        return self.scale(exchange, symbol, sim.price(symbol, self.now_ms()))

    def book(self, exchange: str, symbol: str, depth: int) -> tuple[list, list]:
        """Levels around this exchange's price: (price, quantity) best first, a tick or more apart,
        quantities that change every second (deterministic, as the rest of the market)."""
        price = self.price(exchange, symbol)
        tick = sim.tick_size(symbol)
        step = max(tick, (price / 10_000).quantize(tick))  # about a basis point between levels
        second = self.now_ms() // 1000
        bids, asks = [], []
        for side, sign, out in (("bid", -1, bids), ("ask", 1, asks)):
            rng = sim._rng(exchange, symbol, side, second)
            level = price + sign * tick
            for _ in range(depth):
                level += sign * step * rng.randint(0, 2)
                if level <= 0:
                    break
                quantity = Decimal(str(round(rng.uniform(0.001, 3.0) * 50_000 / max(float(price), 1e-9) ** 0.5 / 100, 8)))
                out.append((level.quantize(tick), quantity.quantize(Decimal("0.00000001"))))
                level += sign * step
        return bids, asks

    def candles(self, exchange: str, symbol: str, timeframe: str, first: int, last: int) -> list[Candle]:
        out = []
        for c in sim.series(symbol, timeframe, first, last, self.now_ms()):
            s = lambda v: self.scale(exchange, symbol, v)  # noqa: E731
            out.append(Candle(c.open_time, s(c.open), s(c.high), s(c.low), s(c.close), c.volume, c.closed))
        return out


def fmt8(value: Decimal) -> str:
    return f"{value:.8f}"


def _plain(value: Decimal) -> str:
    text = sim.digits(value)
    return text if "." in text else text + ".0"


class Handler(BaseHTTPRequestHandler):
    server_version = "cryptosite-sandbox/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, each answer on a kept-alive
    # connection waits for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    market: Market
    faults: Faults

    def log_message(self, fmt, *args):  # quiet: the sandbox is hit every few seconds
        log.debug("%s " + fmt, self.address_string(), *args)

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: object, headers: dict | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _apply_fault(self, exchange: str) -> bool:
        """True when a fault answered (or swallowed) the request."""
        spec = self.faults.get(exchange, urlparse(self.path).path)
        if not spec:
            return False
        mode = spec.get("mode")
        if mode == "latency":
            time.sleep(float(spec.get("latency", 1.0)))
            return False
        if mode == "timeout":
            time.sleep(float(spec.get("latency", 30.0)))
            self.close_connection = True
            return True
        if mode == "error":
            self._send(int(spec.get("status", 503)), {"code": -1, "msg": "Service unavailable", "message": "sandbox error"})
            return True
        if mode == "ratelimit":
            status = int(spec.get("status", 429))
            self._send(status, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": str(spec.get("retry_after", 5))})
            return True
        if mode == "malformed":
            self._send(200, None, raw=b'{"symbol": "BTCUSDT", "price": ')
            return True
        if mode == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return True
        return False

    def do_GET(self):  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if parts[0] == "_sandbox":
            return self._send(200, {"requests": self.faults.requests, "price_requests": self.faults.prices,
                                    "faults": self.faults.by_exchange,
                                    "feed_faults": self.feed_faults.modes, "feed_connections": self.feed_faults.connections})
        exchange = parts[0]
        route = getattr(self, f"_{exchange}", None)
        if exchange in VENUES:
            route = lambda path, q, serve=VENUES[exchange]: serve(self, path, q)  # noqa: E731
        if route is None:
            return self._send(404, {"message": "NotFound"})
        if self._apply_fault(exchange):
            return None
        try:
            return route("/" + "/".join(parts[1:]), query)
        except (ValueError, KeyError) as exc:
            return self._send(400, {"code": -1100, "msg": f"Illegal parameter: {exc}"})

    def do_POST(self):  # noqa: N802
        path = urlparse(self.path).path.rstrip("/")
        if path not in ("/_sandbox/faults", "/_sandbox/feed-faults"):
            return self._send(404, {"message": "NotFound"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            spec = json.loads(self.rfile.read(length) or b"{}")
            if path == "/_sandbox/feed-faults":
                self.feed_faults.set(spec["exchange"], spec["mode"])
                return self._send(200, {"ok": True, "feed_faults": self.feed_faults.modes})
            self.faults.set(spec["exchange"], spec)
        except (ValueError, KeyError, TypeError) as exc:
            return self._send(400, {"message": f"bad fault: {exc}"})
        return self._send(200, {"ok": True, "faults": self.faults.by_exchange})

    def do_DELETE(self):  # noqa: N802
        url = urlparse(self.path)
        exchange = parse_qs(url.query).get("exchange", [None])[-1]
        if url.path.rstrip("/") == "/_sandbox/feed-faults":
            self.feed_faults.clear(exchange)
        else:
            self.faults.clear(exchange)
        return self._send(200, {"ok": True})

    # --- Binance ----------------------------------------------------------------------------
    def _binance(self, path: str, q: dict) -> None:
        listed = {f"{s}USDT": s for s in self.market.symbols}
        if path == "/api/v3/exchangeInfo":
            symbols = [{"symbol": m, "status": "TRADING", "baseAsset": s, "quoteAsset": "USDT",
                        "baseAssetPrecision": 8, "quoteAssetPrecision": 8} for m, s in listed.items()]
            return self._send(200, {"timezone": "UTC", "serverTime": self.market.now_ms(), "symbols": symbols})
        if path == "/api/v3/ticker/price":
            if "symbols" in q:
                wanted = json.loads(q["symbols"])
            elif "symbol" in q:
                wanted = [q["symbol"]]
            else:
                wanted = list(listed)
            if any(m not in listed for m in wanted):
                return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
            rows = [{"symbol": m, "price": fmt8(self.market.price("binance", listed[m]))} for m in wanted]
            return self._send(200, rows[0] if "symbol" in q else rows)
        if path == "/api/v3/depth":
            if q.get("symbol") not in listed:
                return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
            limit = int(q.get("limit", 100))
            if limit not in (5, 10, 20, 50, 100, 500, 1000, 5000):
                return self._send(400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
            bids, asks = self.market.book("binance", listed[q["symbol"]], min(limit, 200))
            return self._send(200, {"lastUpdateId": self.market.now_ms(), "bids": [[fmt8(p), fmt8(v)] for p, v in bids],
                                    "asks": [[fmt8(p), fmt8(v)] for p, v in asks]})
        if path == "/api/v3/klines":
            market, interval = q["symbol"], q["interval"]
            if market not in listed:
                return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
            if interval not in TIMEFRAMES:
                return self._send(400, {"code": -1120, "msg": "Invalid interval."})
            size, limit = TIMEFRAMES[interval], min(int(q.get("limit", 500)), 1000)
            now = self.market.now_ms()
            if "startTime" in q:
                first = int(q["startTime"])
                last = min(int(q.get("endTime", now)), first + (limit - 1) * size + size - 1)
            else:
                last = int(q.get("endTime", now))
                first = last - (limit - 1) * size - size + 1
            candles = self.market.candles("binance", listed[market], interval, first, last)[:limit]
            rows = [[c.open_time, fmt8(c.open), fmt8(c.high), fmt8(c.low), fmt8(c.close), fmt8(c.volume),
                     c.open_time + size - 1, fmt8(c.volume * c.close), 100, fmt8(c.volume / 2),
                     fmt8(c.volume * c.close / 2), "0"] for c in candles]
            return self._send(200, rows)
        return self._send(404, {"code": -1, "msg": "Not found"})

    # --- Coinbase ---------------------------------------------------------------------------
    def _coinbase(self, path: str, q: dict) -> None:
        listed = {f"{s}-USD": s for s in self.market.symbols}
        if path == "/products":
            return self._send(200, [{"id": p, "base_currency": s, "quote_currency": "USD", "status": "online",
                                     "trading_disabled": False, "quote_increment": str(sim.tick_size(s))}
                                    for p, s in listed.items()])
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "products":
            product, what = parts[1], parts[2]
            if product not in listed:
                return self._send(404, {"message": "NotFound"})
            symbol = listed[product]
            if what == "ticker":
                price = self.market.price("coinbase", symbol)
                stamp = datetime.fromtimestamp(self.market.now_ms() / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                return self._send(200, {"ask": _plain(price), "bid": _plain(price), "volume": "1000.0",
                                        "trade_id": self.market.now_ms(), "price": _plain(price), "size": "0.01",
                                        "time": stamp})
            if what == "book":
                if q.get("level", "1") not in ("1", "2"):
                    return self._send(400, {"message": "Invalid level"})
                bids, asks = self.market.book("coinbase", symbol, 1 if q.get("level", "1") == "1" else 200)
                stamp = datetime.fromtimestamp(self.market.now_ms() / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                return self._send(200, {"bids": [[_plain(p), _plain(v), 1] for p, v in bids],
                                        "asks": [[_plain(p), _plain(v), 1] for p, v in asks],
                                        "sequence": self.market.now_ms(), "auction_mode": False, "auction": None,
                                        "time": stamp})
            if what == "candles":
                granularity = int(q.get("granularity", 60))
                if granularity not in COINBASE_GRANULARITY or COINBASE_GRANULARITY[granularity] is None:
                    return self._send(400, {"message": "Unsupported granularity"})
                tf = COINBASE_GRANULARITY[granularity]
                now = self.market.now_ms()
                end = _parse_iso(q["end"]) if "end" in q else now
                start = _parse_iso(q["start"]) if "start" in q else end - 299 * granularity * 1000
                if (end - start) // (granularity * 1000) + 1 > 300:
                    return self._send(400, {"message": "granularity too small for the requested time range. "
                                                       "Count of aggregations requested exceeds 300"})
                candles = self.market.candles("coinbase", symbol, tf, start, end)
                rows = [[c.open_time // 1000, c.low, c.high, c.open, c.close, c.volume] for c in reversed(candles)]
                return self._send(200, None, raw=_json_numbers(rows))
        return self._send(404, {"message": "NotFound"})

    # --- Kraken -----------------------------------------------------------------------------
    def _kraken_names(self) -> dict[str, tuple[str, str, str]]:
        return {s: KRAKEN_NAMES.get(s, (f"{s}USD", f"{s}USD", s)) for s in self.market.symbols}

    def _kraken(self, path: str, q: dict) -> None:
        names = self._kraken_names()
        by_name = {}
        for symbol, (key, alt, _) in names.items():
            by_name[key] = by_name[alt] = symbol
        if path == "/0/public/AssetPairs":
            result = {key: {"altname": alt, "wsname": f"{ws}/USD", "base": {"BTC": "XXBT", "ETH": "XETH", "DOGE": "XXDG"}.get(symbol, ws),
                            "quote": "ZUSD", "status": "online"} for symbol, (key, alt, ws) in names.items()}
            return self._send(200, {"error": [], "result": result})
        if path == "/0/public/Ticker":
            wanted = [p for p in q.get("pair", "").split(",") if p]
            if not wanted or any(p not in by_name for p in wanted):
                return self._send(200, {"error": ["EQuery:Unknown asset pair"]})
            result = {}
            for p in wanted:
                symbol = by_name[p]
                price = _plain(self.market.price("kraken", symbol))
                result[names[symbol][0]] = {"a": [price, "1", "1.000"], "b": [price, "1", "1.000"],
                                            "c": [price, "0.01000000"], "v": ["100.0", "1000.0"],
                                            "p": [price, price], "t": [100, 1000], "l": [price, price],
                                            "h": [price, price], "o": price}
            return self._send(200, {"error": [], "result": result})
        if path == "/0/public/Depth":
            pair = q.get("pair", "")
            if pair not in by_name:
                return self._send(200, {"error": ["EQuery:Unknown asset pair"]})
            symbol = by_name[pair]
            count = max(1, min(int(q.get("count", 100)), 500))
            bids, asks = self.market.book("kraken", symbol, count)
            stamp = self.market.now_ms() // 1000
            rows = {"bids": [[_plain(p), _plain(v), stamp] for p, v in bids], "asks": [[_plain(p), _plain(v), stamp] for p, v in asks]}
            return self._send(200, {"error": [], "result": {names[symbol][0]: rows}})
        if path == "/0/public/OHLC":
            pair = q.get("pair", "")
            if pair not in by_name:
                return self._send(200, {"error": ["EQuery:Unknown asset pair"]})
            interval = int(q.get("interval", 1))
            if interval not in KRAKEN_INTERVAL:
                return self._send(200, {"error": ["EGeneral:Invalid arguments"]})
            tf = KRAKEN_INTERVAL[interval]
            symbol, size = by_name[pair], TIMEFRAMES[tf]
            now = self.market.now_ms()
            # Kraken serves the 720 most recent candles; `since` trims older ones.
            first = max(now - 719 * size - size + 1, int(q.get("since", 0)) * 1000 + 1)
            candles = self.market.candles("kraken", symbol, tf, first, now)
            rows = [[c.open_time // 1000, _plain(c.open), _plain(c.high), _plain(c.low), _plain(c.close),
                     _plain(c.close), fmt8(c.volume), 10] for c in candles]
            last = candles[-2].open_time // 1000 if len(candles) > 1 else 0
            return self._send(200, {"error": [], "result": {names[symbol][0]: rows, "last": last}})
        return self._send(404, {"error": ["EGeneral:Unknown method"]})


def _parse_iso(text: str) -> int:
    if text.isdigit():
        return int(text) * 1000
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _json_numbers(rows: list[list]) -> bytes:
    """Coinbase prints candle fields as JSON numbers; keep every digit of the Decimals."""
    return ("[" + ",".join("[" + ",".join(_plain(v) if isinstance(v, Decimal) else str(v) for v in r) + "]"
                           for r in rows) + "]").encode()


def make_server(host: str = "127.0.0.1", port: int = 0, market: Market | None = None,
                feed_faults=None) -> ThreadingHTTPServer:
    handler = type("SandboxHandler", (Handler,), {"market": market or Market(), "faults": Faults(),
                                                  "feed_faults": feed_faults or FeedFaults()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

"""The sandbox's Bybit: the v5 public REST API for the spot category, over the simulated market, as
https://bybit-exchange.github.io/docs/v5/intro documents it.

Every sandbox symbol is listed against USDT (`BTCUSDT`). Every answer is
{"retCode": 0, "retMsg": "OK", "result": {...}, "retExtInfo": {}, "time": <ms>} with every number in
`result` a JSON string; a refusal is HTTP 200 with retCode 10001 and Bybit's message ("Not supported
symbols" for an unknown symbol, which ccxt maps to BadSymbol; "Invalid period!" for an interval
the sandbox lacks, a BadRequest). The linear, inverse and option categories list nothing.

Klines are Bybit's seven columns, newest first: [startTime, open, high, low, close, volume,
turnover]. With `start` alone they run from `start` onwards (the first `limit` of them, at most
1000); otherwise they are the newest `limit` up to `end` (or now). A candle counts from the start of
its period: `start` inside a week still gets that week (ccxt rounds `since` to whole weeks since
1970, a Thursday, and Bybit's weeks open on Monday).
"""

from decimal import Decimal

from market.domain.candles import Candle
from market.domain.timeframes import TIMEFRAMES, align

from . import simulation as sim

VENUE = "bybit"
QUOTE = "USDT"
# Bybit's intervals that the simulation has candles for; the others Bybit serves (3, 120, 360, 720, M)
# are refused as Bybit refuses an unknown one.
INTERVALS = {"1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "240": "4h", "D": "1d", "W": "1w"}
CATEGORIES = ("spot", "linear", "inverse", "option")
KLINES_PER_REQUEST = 1000
SPOT_BOOK_DEPTH = 200
DAY = TIMEFRAMES["1d"]


class Refusal(Exception):
    def __init__(self, msg: str, code: int = 10001):
        super().__init__(msg)
        self.code, self.msg = code, msg


def serve(handler, path: str, q: dict) -> None:
    route = ROUTES.get(path)
    now = handler.market.now_ms()
    if route is None:
        return handler._send(404, {"retCode": 404, "retMsg": "Not Found", "result": {}, "retExtInfo": {}, "time": now})
    try:
        result = route(handler.market, q)
    except Refusal as refusal:
        return handler._send(200, {"retCode": refusal.code, "retMsg": refusal.msg, "result": {}, "retExtInfo": {},
                                   "time": now})
    return handler._send(200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now})


# --- parameters ---------------------------------------------------------------------------------
num = sim.digits  # every digit, no exponent, no trailing zeros, as Bybit prints


def _int(q: dict, name: str, default: int) -> int:
    try:
        return int(q[name]) if q.get(name) not in (None, "") else default
    except ValueError:
        raise Refusal(f"params error: {name} invalid") from None


def _category(q: dict, default: str | None = None) -> str:
    category = q.get("category") or default
    if category not in CATEGORIES:
        raise Refusal("Illegal category")
    return category


def listed(market) -> dict[str, str]:
    """Bybit's symbol -> sandbox symbol."""
    return {f"{s}{QUOTE}": s for s in market.symbols}


def _symbol(market, q: dict, category: str) -> tuple[str, str]:
    name = q.get("symbol") or ""
    symbol = listed(market).get(name) if category == "spot" else None
    if symbol is None:
        raise Refusal("Not supported symbols")
    return name, symbol


# --- market -------------------------------------------------------------------------------------
def time_(market, q: dict) -> dict:
    now = market.now_ms()
    return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}


def instruments(market, q: dict) -> dict:
    category = _category(q)
    if category != "spot":
        return {"category": category, "list": [], "nextPageCursor": ""}
    wanted, status = q.get("symbol"), q.get("status") or "Trading"
    rows = [_instrument(name, symbol) for name, symbol in listed(market).items()
            if (not wanted or name == wanted) and status == "Trading" and q.get("baseCoin") in (None, "", symbol)]
    return {"category": "spot", "list": rows}


def _instrument(name: str, symbol: str) -> dict:
    return {
        "symbol": name, "baseCoin": symbol, "quoteCoin": QUOTE, "innovation": "0", "status": "Trading",
        "marginTrading": "none", "stTag": "0",
        "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000001",
                          "maxOrderQty": "10000000", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
        "priceFilter": {"tickSize": num(sim.tick_size(symbol))},
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
    }


def tickers(market, q: dict) -> dict:
    category = _category(q)
    if category != "spot":
        return {"category": category, "list": []}
    pairs = [_symbol(market, q, category)] if q.get("symbol") else list(listed(market).items())
    return {"category": "spot", "list": [_ticker(market, name, symbol) for name, symbol in pairs]}


def _ticker(market, name: str, symbol: str) -> dict:
    now = market.now_ms()
    price = market.price(VENUE, symbol)
    (bid, bid_size), (ask, ask_size) = (side[0] for side in market.book(VENUE, symbol, 1))
    day = market.candles(VENUE, symbol, "1h", now - DAY + 1, now)  # the last 24 hours
    before = day[0].open
    return {
        "symbol": name, "bid1Price": num(bid), "bid1Size": num(bid_size), "ask1Price": num(ask), "ask1Size": num(ask_size),
        "lastPrice": num(price), "prevPrice24h": num(before),
        "price24hPcnt": num(((price - before) / before).quantize(Decimal("0.0001"))),
        "highPrice24h": num(max(c.high for c in day)), "lowPrice24h": num(min(c.low for c in day)),
        "turnover24h": num(sum((_turnover(c) for c in day), Decimal(0))),
        "volume24h": num(sum((c.volume for c in day), Decimal(0))), "usdIndexPrice": num(price),
    }


def _turnover(c: Candle) -> Decimal:
    return (c.volume * c.close).quantize(Decimal("0.00000001"))


def orderbook(market, q: dict) -> dict:
    category = _category(q)
    name, symbol = _symbol(market, q, category)
    depth = max(1, min(_int(q, "limit", 1), SPOT_BOOK_DEPTH))
    bids, asks = market.book(VENUE, symbol, depth)
    now = market.now_ms()
    return {"s": name, "b": [[num(p), num(s)] for p, s in bids], "a": [[num(p), num(s)] for p, s in asks],
            "ts": now, "u": now // 1000, "seq": now // 100, "cts": now}


def kline(market, q: dict) -> dict:
    category = _category(q, default="linear")  # Bybit's default when no category is given
    name, symbol = _symbol(market, q, category)
    timeframe = INTERVALS.get(q.get("interval") or "")
    if timeframe is None:
        raise Refusal("Invalid period!")
    limit = max(1, min(_int(q, "limit", 200), KLINES_PER_REQUEST))
    size, now = TIMEFRAMES[timeframe], market.now_ms()
    start = align(max(0, _int(q, "start", 0)), timeframe)
    end = min(now, _int(q, "end", now))
    if q.get("start") and not q.get("end"):  # from start onwards
        rows = market.candles(VENUE, symbol, timeframe, start, min(end, start + limit * size))[:limit]
    else:  # the newest up to end
        rows = market.candles(VENUE, symbol, timeframe, max(start, align(end, timeframe) - (limit - 1) * size), end)[-limit:]
    return {"category": category, "symbol": name,
            "list": [[str(c.open_time), num(c.open), num(c.high), num(c.low), num(c.close), num(c.volume),
                      num(_turnover(c))] for c in reversed(rows)]}


ROUTES = {
    "/v5/market/time": time_,
    "/v5/market/instruments-info": instruments,
    "/v5/market/tickers": tickers,
    "/v5/market/orderbook": orderbook,
    "/v5/market/kline": kline,
}

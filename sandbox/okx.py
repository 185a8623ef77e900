"""The sandbox's OKX: the v5 public REST API for spot, over the simulated market, as
https://www.okx.com/docs-v5/en/ documents it.

Every sandbox symbol is listed against USDT (`BTC-USDT`). Every answer is
{"code": "0", "msg": "", "data": [...]} with every number a JSON string; a refusal carries OKX's code
and HTTP status: 51001 (200) for an instrument that does not exist, 51000 (400) for a parameter in
error, 50014 (400) for one missing. ccxt maps them to BadSymbol and BadRequest.

Candles are OKX's nine columns, newest first: [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]
(for spot, vol is in the base currency, the other two in the quote currency; confirm is "0" while
the candle is open). `after` asks for candles older than a time, `before` for newer ones, `limit`
for at most 300 of the newest that qualify; /market/candles reaches back 1,440 candles,
/market/history-candles any time.
"""

from decimal import Decimal

from market.domain.candles import Candle
from market.domain.timeframes import TIMEFRAMES, align

from . import simulation as sim

VENUE = "okx"
QUOTE = "USDT"
# OKX's bars that the simulation has candles for. The others OKX serves (3m, 2H, 6Hutc, 12Hutc, 1Mutc,
# and every Hong Kong-time bar: 6H, 12H, 1D, 1W...) are refused as OKX refuses an unknown bar.
BARS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "4H": "4h", "1Dutc": "1d", "1Wutc": "1w"}
INSTRUMENT_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
TICKER_TYPES = ("SPOT", "SWAP", "FUTURES", "OPTION")
CANDLES_PER_REQUEST = 300
RECENT_CANDLES = 1440  # what /market/candles reaches; older ones are /market/history-candles'
BOOK_DEPTH = {"books": 400, "books-full": 5000}
LISTED_AT = "1577836800000"  # 2020-01-01: when the sandbox "listed" its instruments
HOUR, DAY = TIMEFRAMES["1h"], TIMEFRAMES["1d"]


class Refusal(Exception):
    def __init__(self, code: str, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def serve(handler, path: str, q: dict) -> None:
    route = ROUTES.get(path)
    if route is None:
        return handler._send(404, {"code": "404", "msg": "Not Found", "data": []})
    try:
        data = route(handler.market, q)
    except Refusal as refusal:
        return handler._send(refusal.status, {"code": refusal.code, "msg": refusal.msg, "data": []})
    return handler._send(200, {"code": "0", "msg": "", "data": data})


# --- parameters ---------------------------------------------------------------------------------
num = sim.digits  # every digit, no exponent, no trailing zeros, as OKX prints


def _int(q: dict, name: str, default: int) -> int:
    try:
        return int(q[name]) if q.get(name) not in (None, "") else default
    except ValueError:
        raise Refusal("51000", f"Parameter {name} error") from None


def _required(q: dict, name: str) -> str:
    if not q.get(name):
        raise Refusal("50014", f"Parameter {name} can not be empty")
    return q[name]


def _inst_type(q: dict, allowed: tuple[str, ...]) -> str:
    inst_type = _required(q, "instType")
    if inst_type not in allowed:
        raise Refusal("51000", "Parameter instType error")
    return inst_type


def listed(market) -> dict[str, str]:
    """instId -> sandbox symbol."""
    return {f"{s}-{QUOTE}": s for s in market.symbols}


def _symbol(market, q: dict) -> tuple[str, str]:
    inst_id = _required(q, "instId")
    symbol = listed(market).get(inst_id)
    if symbol is None:
        raise Refusal("51001", "Instrument ID does not exist", 200)
    return inst_id, symbol


# --- public data --------------------------------------------------------------------------------
def time_(market, q: dict) -> list[dict]:
    return [{"ts": str(market.now_ms())}]


def instruments(market, q: dict) -> list[dict]:
    if _inst_type(q, INSTRUMENT_TYPES) != "SPOT":
        return []  # the sandbox trades spot only
    wanted = q.get("instId")
    return [_instrument(inst_id, symbol, code) for code, (inst_id, symbol) in enumerate(listed(market).items(), 1)
            if not wanted or inst_id == wanted]


def _instrument(inst_id: str, symbol: str, code: int) -> dict:
    return {
        "instType": "SPOT", "instId": inst_id, "uly": "", "instFamily": "", "baseCcy": symbol, "quoteCcy": QUOTE,
        "settleCcy": "", "ctVal": "", "ctMult": "", "ctValCcy": "", "ctType": "", "optType": "", "stk": "",
        "alias": "", "category": "1", "groupId": "1", "listTime": LISTED_AT, "auctionEndTime": "", "contTdSwTime": "",
        "preMktSwTime": "", "openType": "", "expTime": "", "lever": "", "tickSz": num(sim.tick_size(symbol)),
        "lotSz": "0.00000001", "minSz": "0.00001", "state": "live", "ruleType": "normal",
        "maxLmtSz": "9999999999", "maxMktSz": "1000000", "maxLmtAmt": "20000000", "maxMktAmt": "1000000",
        "maxTwapSz": "9999999999", "maxIcebergSz": "9999999999", "maxTriggerSz": "9999999999", "maxStopSz": "1000000",
        "futureSettlement": False, "tradeQuoteCcyList": [QUOTE], "instIdCode": code, "instCategory": "1",
        "upcChg": [],
    }


# --- market data --------------------------------------------------------------------------------
def tickers(market, q: dict) -> list[dict]:
    if _inst_type(q, TICKER_TYPES) != "SPOT":
        return []
    return [_ticker(market, inst_id, symbol) for inst_id, symbol in listed(market).items()]


def ticker(market, q: dict) -> list[dict]:
    return [_ticker(market, *_symbol(market, q))]


def _ticker(market, inst_id: str, symbol: str) -> dict:
    now = market.now_ms()
    price = market.price(VENUE, symbol)
    (bid, bid_size), (ask, ask_size) = (side[0] for side in market.book(VENUE, symbol, 1))
    day = market.candles(VENUE, symbol, "1h", now - DAY + 1, now)  # the last 24 hours
    utc8 = align(now + 8 * HOUR, "1d") - 8 * HOUR  # midnight in UTC+8
    return {
        "instType": "SPOT", "instId": inst_id, "last": num(price), "lastSz": "0.01",
        "askPx": num(ask), "askSz": num(ask_size), "bidPx": num(bid), "bidSz": num(bid_size),
        "open24h": num(day[0].open), "high24h": num(max(c.high for c in day)), "low24h": num(min(c.low for c in day)),
        "volCcy24h": num(sum((_quote_volume(c) for c in day), Decimal(0))),
        "vol24h": num(sum((c.volume for c in day), Decimal(0))),
        "sodUtc0": num(market.candles(VENUE, symbol, "1d", align(now, "1d"), now)[0].open),
        "sodUtc8": num(market.candles(VENUE, symbol, "1h", utc8, utc8)[0].open),
        "ts": str(now),
    }


def _quote_volume(c: Candle) -> Decimal:
    return (c.volume * c.close).quantize(Decimal("0.00000001"))


def books(market, q: dict, endpoint: str = "books") -> list[dict]:
    _, symbol = _symbol(market, q)
    depth = max(1, min(_int(q, "sz", 1), BOOK_DEPTH[endpoint]))
    bids, asks = market.book(VENUE, symbol, depth)
    full = endpoint == "books-full"
    return [{"asks": [_level(p, s, full) for p, s in asks], "bids": [_level(p, s, full) for p, s in bids],
             "ts": str(market.now_ms())}]


def _level(price: Decimal, size: Decimal, full: bool) -> list[str]:
    """/market/books: [price, size, "0" (deprecated), orders]; /market/books-full: [price, size, orders]."""
    orders = str(1 + int(size * 1000) % 9)
    return [num(price), num(size), orders] if full else [num(price), num(size), "0", orders]


def candles(market, q: dict, history: bool = False) -> list[list[str]]:
    _, symbol = _symbol(market, q)
    timeframe = BARS.get(q.get("bar") or "1m")
    if timeframe is None:
        raise Refusal("51000", "Parameter bar error")
    limit = _int(q, "limit", 100)
    if limit < 1:
        raise Refusal("51000", "Parameter limit error")
    limit = min(limit, CANDLES_PER_REQUEST)
    size, now = TIMEFRAMES[timeframe], market.now_ms()
    newest = min(now, _int(q, "after", now + 1) - 1)  # `after`: older than this time
    oldest = max(0, _int(q, "before", -1) + 1)  # `before`: newer than this time
    if not history:
        oldest = max(oldest, align(now, timeframe) - (RECENT_CANDLES - 1) * size)
    if newest < oldest:
        return []
    first = max(oldest, align(newest, timeframe) - (limit - 1) * size)
    rows = market.candles(VENUE, symbol, timeframe, first, newest)[-limit:]
    return [[str(c.open_time), num(c.open), num(c.high), num(c.low), num(c.close), num(c.volume),
             num(_quote_volume(c)), num(_quote_volume(c)), "1" if c.closed else "0"] for c in reversed(rows)]


ROUTES = {
    "/api/v5/public/time": time_,
    "/api/v5/public/instruments": instruments,
    "/api/v5/market/tickers": tickers,
    "/api/v5/market/ticker": ticker,
    "/api/v5/market/books": books,
    "/api/v5/market/books-full": lambda market, q: books(market, q, "books-full"),
    "/api/v5/market/candles": candles,
    "/api/v5/market/history-candles": lambda market, q: candles(market, q, history=True),
}

"""The sandbox's CoinGecko public REST API (v3), in CoinGecko's documented shapes, over the simulated
market: /api/v3/ping, /coins/markets, /simple/price, /coins/{id}/ohlc, /coins/{id}/market_chart.

CoinGecko prints numbers as JSON numbers; the sandbox prints every digit of its Decimals. OHLC rows
carry the candle's close time, as CoinGecko's do; granularity is CoinGecko's automatic one
(ohlc: 1-2 days 30 min, 3-30 days 4 h, beyond 4 days; market_chart: 1 day 5-minutely, 2-90 days
hourly, beyond daily at 00:00 UTC), and market_chart ends with a point at "now".
"""

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from market.domain.candles import Candle
from market.domain.timeframes import TIMEFRAMES, align

from . import simulation as sim

SOURCE = "coingecko"
DAY = TIMEFRAMES["1d"]
OHLC_DAYS = {"1": 1, "7": 7, "14": 14, "30": 30, "90": 90, "180": 180, "365": 365, "max": 365}
# CoinGecko's coin ids (a symbol is not an id there); the other sandbox coins use the lowercase symbol.
COIN_IDS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "ADA": "cardano", "DOGE": "dogecoin",
            "XRP": "ripple", "DOT": "polkadot", "LTC": "litecoin", "LINK": "chainlink", "AVAX": "avalanche-2",
            "MATIC": "matic-network", "ATOM": "cosmos", "UNI": "uniswap", "XLM": "stellar", "BCH": "bitcoin-cash",
            "ETC": "ethereum-classic", "FIL": "filecoin", "SHIB": "shiba-inu", "TRX": "tron", "NEAR": "near"}
NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "ADA": "Cardano", "DOGE": "Dogecoin", "XRP": "XRP",
         "DOT": "Polkadot", "LTC": "Litecoin", "LINK": "Chainlink", "AVAX": "Avalanche"}
# Market caps at the simulation's base prices fall with the rank in sim.ALL_SYMBOLS (BTC first).
LARGEST_CAP = Decimal("1300000000000")


def coin_id(symbol: str) -> str:
    return COIN_IDS.get(symbol, symbol.lower())


_plain = sim.digits  # every digit, no exponent, no trailing zeros, as CoinGecko prints


def _number(value) -> str:
    return _plain(value) if isinstance(value, Decimal) else str(value)


def _json(value) -> bytes:
    """JSON with Decimals as numbers printed to the last digit (json.dumps would round to a float)."""
    def enc(v) -> str:
        if isinstance(v, dict):
            return "{" + ",".join(f'"{k}":{enc(x)}' for k, x in v.items()) + "}"
        if isinstance(v, list | tuple):
            return "[" + ",".join(enc(x) for x in v) + "]"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        return _number(v)

    return enc(value).encode()


def _precise(value: Decimal, precision: str | None) -> Decimal:
    if precision in (None, "", "full"):
        return value
    return value.quantize(Decimal(1).scaleb(-int(precision)), rounding=ROUND_HALF_EVEN)


def serve(handler, path: str, q: dict) -> None:
    market = handler.market
    by_id = {coin_id(s): s for s in market.symbols}
    send = lambda status, body: handler._send(status, None, raw=_json(body))  # noqa: E731
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "v3"]:
        return send(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/"})
    route = parts[2:]
    if route == ["ping"]:
        return send(200, {"gecko_says": "(V3) To the Moon!"})
    if route == ["simple", "price"]:
        if not q.get("ids"):
            return send(400, {"error": "Missing parameter ids"})
        if not q.get("vs_currencies"):
            return send(400, {"error": "Missing parameter vs_currencies"})
        currencies = q["vs_currencies"].lower().split(",")
        body = {}
        for coin in q["ids"].lower().split(","):
            if coin not in by_id:
                continue  # CoinGecko leaves unknown ids out
            row = {}
            if "usd" in currencies:
                row["usd"] = _precise(market.price(SOURCE, by_id[coin]), q.get("precision"))
            if q.get("include_last_updated_at") == "true":
                row["last_updated_at"] = market.now_ms() // 1000
            body[coin] = row
        return send(200, body)
    if q.get("vs_currency", "").lower() != "usd":
        return send(400, {"error": "invalid vs_currency"})
    if route == ["coins", "markets"]:
        return send(200, _markets(market, q))
    if len(route) == 3 and route[0] == "coins" and route[2] in ("ohlc", "market_chart"):
        if route[1] not in by_id:
            return send(404, {"error": "coin not found"})
        symbol = by_id[route[1]]
        if route[2] == "ohlc":
            if q.get("days") not in OHLC_DAYS:
                return send(400, {"error": "invalid days"})
            return send(200, _ohlc(market, symbol, OHLC_DAYS[q["days"]], q.get("precision")))
        days = q.get("days", "")
        if not (days == "max" or days.isdigit() and int(days) > 0):
            return send(400, {"error": "invalid days"})
        return send(200, _market_chart(market, symbol, 365 if days == "max" else int(days), q.get("precision")))
    return send(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/"})


def _ohlc(market, symbol: str, days: int, precision: str | None) -> list:
    """[[close time, open, high, low, close], ...] oldest first, the newest candle as far as revealed."""
    now = market.now_ms()
    first = now - days * DAY
    if days <= 2:
        size, candles = TIMEFRAMES["30m"], market.candles(SOURCE, symbol, "30m", first, now)
    elif days <= 30:
        size, candles = TIMEFRAMES["4h"], market.candles(SOURCE, symbol, "4h", first, now)
    else:
        size, candles = 4 * DAY, _four_days(market.candles(SOURCE, symbol, "1d", first, now))
    return [[c.open_time + size] + [_precise(v, precision) for v in (c.open, c.high, c.low, c.close)] for c in candles]


def _four_days(daily: list[Candle]) -> list[Candle]:
    """Daily candles folded into 4-day ones (aligned to the epoch in steps of 4 days)."""
    out: dict[int, list[Candle]] = {}
    for c in daily:
        out.setdefault(c.open_time // (4 * DAY) * (4 * DAY), []).append(c)
    return [Candle(t, p[0].open, max(c.high for c in p), min(c.low for c in p), p[-1].close,
                   sum((c.volume for c in p), Decimal(0)), False) for t, p in sorted(out.items())]


def _market_chart(market, symbol: str, days: int, precision: str | None) -> dict:
    """Price points (each the price at the start of a candle of the granularity), a last one at now,
    with market caps and 24-hour volumes at the same times."""
    now = market.now_ms()
    step = "5m" if days == 1 else "1h" if days <= 90 else "1d"
    candles = market.candles(SOURCE, symbol, step, now - days * DAY, now)
    points = [(c.open_time, c.open) for c in candles] + [(now, market.price(SOURCE, symbol))]
    supply = _supply(symbol)
    day_volume = sim.candle(symbol, "1d", align(now, "1d") - DAY).volume
    return {
        "prices": [[t, _precise(p, precision)] for t, p in points],
        "market_caps": [[t, (p * supply).quantize(Decimal("0.01"))] for t, p in points],
        "total_volumes": [[t, (p * day_volume).quantize(Decimal("0.01"))] for t, p in points],
    }


def _supply(symbol: str) -> Decimal:
    rank = sim.ALL_SYMBOLS.index(symbol) + 1
    return (LARGEST_CAP / rank**2 / Decimal(str(sim.base_price(symbol)))).quantize(Decimal(1))


def _markets(market, q: dict) -> list:
    """/coins/markets: the documented fields, largest market cap first, paged."""
    now = market.now_ms()
    rows = []
    for symbol in market.symbols:
        price = market.price(SOURCE, symbol)
        before = market.scale(SOURCE, symbol, sim.price(symbol, now - DAY))
        day = market.candles(SOURCE, symbol, "1h", now - DAY, now)
        supply = _supply(symbol)
        change = price - before
        rows.append({
            "id": coin_id(symbol), "symbol": symbol.lower(), "name": NAMES.get(symbol, symbol.title()),
            "image": f"https://assets.coingecko.com/coins/images/1/large/{coin_id(symbol)}.png",
            "current_price": price, "market_cap": (price * supply).quantize(Decimal(1)), "market_cap_rank": None,
            "fully_diluted_valuation": None, "total_volume": (price * sum(c.volume for c in day)).quantize(Decimal(1)),
            "high_24h": max(c.high for c in day), "low_24h": min(c.low for c in day),
            "price_change_24h": change, "price_change_percentage_24h": (change / before * 100).quantize(Decimal("0.00001")),
            "circulating_supply": supply, "total_supply": supply, "max_supply": None,
            "last_updated": _iso(now),
        })
    rows.sort(key=lambda r: r["market_cap"], reverse=True)
    for rank, row in enumerate(rows, 1):
        row["market_cap_rank"] = rank
    per_page = max(1, min(int(q.get("per_page", 100)), 250))
    page = max(1, int(q.get("page", 1)))
    return rows[(page - 1) * per_page: page * per_page]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

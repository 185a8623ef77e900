"""Kraken public REST API (USD markets). Kraken calls bitcoin XBT and keys results by names
such as XXBTZUSD; it serves only the 720 most recent candles of each interval."""

from ..domain.candles import Candle, aggregate
from ..domain.prices import Quote
from ..domain.symbols import ALIASES
from ..domain.timeframes import TIMEFRAMES, align
from .base import Exchange, dec, make_book
from .errors import BAD_RESPONSE, NOT_LISTED, UNREACHABLE, ExchangeError

# Kraken's weekly candles start on Thursday; ours start on Monday, so 1w is built from 1d.
INTERVAL = {"1m": ("1m", 1), "5m": ("5m", 5), "15m": ("15m", 15), "30m": ("30m", 30), "1h": ("1h", 60),
            "4h": ("4h", 240), "1d": ("1d", 1440), "1w": ("1d", 1440)}


class Kraken(Exchange):
    name = "kraken"
    # Published: public endpoints allow about one call per second per IP. We pace at 1 call
    # every 1.1 s and fetch all tickers in one call.
    budget = "~1 req/s per IP (public); cryptosite paces at 1 per 1.1 s"
    min_interval = 1.1

    def _result(self, body: dict) -> dict:
        errors = body.get("error") or []
        if errors:
            text = "; ".join(map(str, errors))
            if "Unknown asset pair" in text:
                raise ExchangeError("Symbol not found", NOT_LISTED)
            status = UNREACHABLE if ("Unavailable" in text or "Busy" in text or "Rate limit" in text) else BAD_RESPONSE
            raise ExchangeError(f"Kraken API error: {text}", status)
        return body["result"]

    async def fetch_listing(self) -> dict[str, str]:
        _, body = await self._get("/0/public/AssetPairs")
        with self.parsing():
            listing = {}
            for key, pair in self._result(body).items():
                if key.endswith(".d") or "wsname" not in pair:
                    continue
                base, _, quote = pair["wsname"].partition("/")
                if quote == "USD" and pair.get("status", "online") == "online":
                    listing[ALIASES.get(base, base)] = key
            return listing

    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        wanted = await self.listed(symbols)
        if not wanted:
            return []
        _, body = await self._get("/0/public/Ticker", {"pair": ",".join(wanted)})
        with self.parsing():
            result = self._result(body)
            return [Quote(wanted[key], dec(row["c"][0])) for key, row in result.items() if key in wanted]

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        pair = await self.market_id(symbol)
        base_tf, minutes = INTERVAL[timeframe]
        since = align(start_ms, timeframe) // 1000 - 1
        _, body = await self._get("/0/public/OHLC", {"pair": pair, "interval": minutes, "since": since})
        with self.parsing():
            result = self._result(body)
            rows = next(v for k, v in result.items() if k != "last")
            # [time, open, high, low, close, vwap, volume, count]
            base = [
                Candle(int(r[0]) * 1000, dec(r[1]), dec(r[2]), dec(r[3]), dec(r[4]), dec(r[6])).with_closed(base_tf, now_ms)
                for r in rows
            ]
        last = align(end_ms, timeframe) + TIMEFRAMES[timeframe]
        base = [c for c in base if align(start_ms, timeframe) <= c.open_time < last]
        candles = base if base_tf == timeframe else aggregate(base, timeframe, now_ms)
        return [c for c in candles if start_ms <= c.open_time <= end_ms]

    async def fetch_book(self, symbol: str, depth: int, now_ms: int):
        pair = await self.market_id(symbol)
        _, body = await self._get("/0/public/Depth", {"pair": pair, "count": depth})
        with self.parsing():
            book = next(iter(self._result(body).values()))  # [price, volume, timestamp]
            stamps = [int(row[2]) for row in (*book["bids"][:1], *book["asks"][:1])]
            stamp = max(stamps) * 1000 if stamps else now_ms
            return make_book(self.name, symbol, book["bids"], book["asks"], depth, stamp)

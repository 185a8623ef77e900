"""Binance Spot public REST API (USDT markets)."""

import json

from ..domain.candles import Candle
from ..domain.prices import Quote
from ..domain.timeframes import TIMEFRAMES
from .base import Exchange, dec, make_book

KLINES_PAGE = 1000
DEPTH_LIMITS = (5, 10, 20, 50, 100)  # the depth sizes Binance serves at the lowest weight (5)


class Binance(Exchange):
    name = "binance"
    # Published: 6,000 request weight per minute per IP. We spend about 60 a minute:
    # ticker/price for all tracked symbols (weight 4) every 5 s, klines (weight 2) per sync,
    # exchangeInfo (weight 20) once an hour; depth (weight 5 up to 100 levels) only while a book is
    # watched, at most once a second per market.
    budget = "6,000 weight/min per IP; cryptosite uses ~60/min"
    min_interval = 0.05
    quote_asset = "USDT"

    async def fetch_listing(self) -> dict[str, str]:
        _, body = await self._get("/api/v3/exchangeInfo")
        with self.parsing():
            return {
                s["baseAsset"].upper(): s["symbol"]
                for s in body["symbols"]
                if s["quoteAsset"] == self.quote_asset and s.get("status", "TRADING") == "TRADING"
            }

    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        wanted = await self.listed(symbols)
        if not wanted:
            return []
        # One call for every tracked symbol: `symbols=["BTCUSDT","ETHUSDT"]`.
        _, body = await self._get("/api/v3/ticker/price", {"symbols": json.dumps(list(wanted), separators=(",", ":"))})
        with self.parsing():
            return [Quote(wanted[row["symbol"]], dec(row["price"])) for row in body if row["symbol"] in wanted]

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        market = await self.market_id(symbol)
        size = TIMEFRAMES[timeframe]
        out: list[Candle] = []
        cursor = start_ms
        while cursor <= end_ms:
            params = {"symbol": market, "interval": timeframe, "startTime": cursor, "endTime": end_ms, "limit": KLINES_PAGE}
            _, rows = await self._get("/api/v3/klines", params)
            with self.parsing():
                page = [
                    Candle(int(r[0]), dec(r[1]), dec(r[2]), dec(r[3]), dec(r[4]), dec(r[5])).with_closed(timeframe, now_ms)
                    for r in rows
                ]
            out.extend(c for c in page if start_ms <= c.open_time <= end_ms)
            if len(page) < KLINES_PAGE:
                break
            cursor = page[-1].open_time + size
        return out

    async def fetch_book(self, symbol: str, depth: int, now_ms: int):
        market = await self.market_id(symbol)
        limit = next(n for n in DEPTH_LIMITS if n >= min(depth, 100))
        _, body = await self._get("/api/v3/depth", {"symbol": market, "limit": limit})
        with self.parsing():
            return make_book(self.name, symbol, body["bids"], body["asks"], depth, now_ms)

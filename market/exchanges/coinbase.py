"""Coinbase Exchange public REST API (USD markets)."""

import asyncio
from datetime import UTC, datetime

from ..domain.candles import Candle, base_window, built
from ..domain.prices import Quote
from .base import Exchange, dec, make_book
from .errors import NOT_LISTED, ExchangeError

CANDLES_PAGE = 300
# Our timeframe -> (granularity Coinbase serves, whether we aggregate it further).
GRANULARITY = {
    "1m": ("1m", 60),
    "5m": ("5m", 300),
    "15m": ("15m", 900),
    "30m": ("15m", 900),
    "1h": ("1h", 3600),
    "4h": ("1h", 3600),
    "1d": ("1d", 86400),
    "1w": ("1d", 86400),
}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Coinbase(Exchange):
    name = "coinbase"
    # Published: 10 requests per second per IP for public endpoints. We pace at 8/s at most:
    # one ticker per tracked symbol per poll (Coinbase has no batch ticker), candles per sync.
    budget = "10 req/s per IP (public); cryptosite paces at <= 8 req/s"
    min_interval = 0.125

    async def fetch_listing(self) -> dict[str, str]:
        _, body = await self._get("/products")
        with self.parsing():
            return {
                p["base_currency"].upper(): p["id"]
                for p in body
                if p["quote_currency"] == "USD" and p.get("status", "online") == "online" and not p.get("trading_disabled")
            }

    async def _quote(self, symbol: str, product: str) -> Quote | None:
        status, body = await self._get(f"/products/{product}/ticker", allow_status=(404,))
        if status == 404:
            return None
        with self.parsing():
            stamp = _parse_time(body["time"]) if body.get("time") else None
            return Quote(symbol, dec(body["price"]), stamp)

    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        listing = await self.listing()
        found = await asyncio.gather(*(self._quote(s, listing[s]) for s in symbols if s in listing))
        return [q for q in found if q is not None]

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        product = await self.market_id(symbol)
        base_tf, granularity = GRANULARITY[timeframe]
        step = granularity * 1000
        # Fetch base candles for whole buckets of the asked timeframe.
        first, last = base_window(timeframe, base_tf, start_ms, end_ms, now_ms)
        rows: dict[int, Candle] = {}
        cursor = first
        while cursor <= last:
            page_end = min(last, cursor + (CANDLES_PAGE - 1) * step)
            params = {"granularity": granularity, "start": _iso(cursor), "end": _iso(page_end)}
            status, body = await self._get(f"/products/{product}/candles", params, allow_status=(404,))
            if status == 404:
                raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED)
            with self.parsing():
                for r in body:  # [time, low, high, open, close, volume], newest first
                    t = int(r[0]) * 1000
                    if cursor <= t <= page_end:
                        rows[t] = Candle(t, dec(r[3]), dec(r[2]), dec(r[1]), dec(r[4]), dec(r[5]))
            cursor = page_end + step
        return built(rows, base_tf, timeframe, start_ms, end_ms, now_ms)

    async def fetch_book(self, symbol: str, depth: int, now_ms: int):
        product = await self.market_id(symbol)
        # Level 2: the aggregated book (price, size, number of orders), best first.
        status, body = await self._get(f"/products/{product}/book", {"level": 2}, allow_status=(404,))
        if status == 404:
            raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED)
        with self.parsing():
            stamp = _parse_time(body["time"]) if body.get("time") else now_ms
            return make_book(self.name, symbol, body["bids"], body["asks"], depth, stamp)

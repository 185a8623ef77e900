"""CoinGecko public REST API (v3): an aggregator, not an exchange.

CoinGecko prices a coin across many venues: its price is a source of its own and never part of the
composite median (`aggregator`). Its times are not trade times: a quote's timestamp is
`last_updated_at`, when CoinGecko last recomputed its aggregated price (it refreshes /simple/price
every 60 s on the keyless and Demo API, 20-30 s on paid plans); an OHLC row's timestamp is the
candle's CLOSE time (its docs say so), turned here into the open time every other source uses.
CoinGecko has no order book and prints no per-candle volume (candles carry volume 0).

What each timeframe is built from, and how far back it reaches (the free API's automatic
granularity, no paid `interval` parameter):

  1m 5m 15m   /coins/{id}/market_chart?days=1: 5-minutely price points over the last 24 h; each
              bucket's open/high/low/close are the points inside it (1m candles are therefore
              sparse: about one minute in five has a point; a 15m bucket whose first point comes
              later than one point spacing after its start is left out). Reach: 24 h.
  30m         /coins/{id}/ohlc?days=1: CoinGecko's own 30-minute candles. Reach: 24 h.
  1h          two 30m candles each. Reach: 24 h.
  4h          /coins/{id}/ohlc?days=30: CoinGecko's own 4-hour candles. Reach: 30 days.
  1d 1w       aggregated from those 4h candles. Reach: 30 days (4 whole weeks and the current one).

A bucket is aggregated only when its smaller candles cover it from its start without a hole (the
newest may still be filling), so a day or week cut by the edge of the data is left out, never
invented. A request wholly older than the reach is answered with no candles and no call.

Budget. CoinGecko publishes: keyless, per IP, roughly 5-15 calls/min depending on traffic; a Demo
key ~30 calls/min (its docs have also said 100) and, per its pricing page, 10,000 calls/month;
paid plans 250+ calls/min. Every answer, refusals included, counts. The poller asks /simple/price
for all tracked coins in one call, at most once a minute (`min_poll_interval`: CoinGecko's own
cache is 60 s). The candle sync asks for every series every 30 s, so each response is kept here
for CACHE_SECONDS: market_chart 5 min (a new point every 5 min), ohlc days=1 15 min and days=30
30 min (CoinGecko recomputes OHLC every 15 min). Per tracked coin that is at most
60/300 + 60/900 + 60/1800 = 0.3 calls/min, whatever the number of timeframes. The default setup,
4 coins: 1 (prices) + 4 x 0.3 (candles) + 1/60 (the listing, hourly) ~ 2.2 calls/min, under half
of the lowest keyless figure; up to ~13 coins stay under 5/min. Requests are paced (6 s apart
keyless, 2.5 s with a Demo key, 0.25 s with a Pro key), so a cold start of 4 coins (14 calls) takes
about 80 s keyless. A Demo key's monthly credits do not cover this cadence (~95,000 calls/month):
with one, lengthen the poll period in the admin's schedule or go keyless. The cache lives in this
process (the worker's threads share it; each web process has its own).
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from ..domain.candles import Candle, aggregate
from ..domain.prices import Quote
from ..domain.timeframes import MINUTE, TIMEFRAMES, align
from .base import Exchange, dec
from .errors import BAD_RESPONSE, NOT_LISTED, ExchangeError

DAY = TIMEFRAMES["1d"]
POINT_SPACING = 5 * MINUTE  # market_chart over one day: 5-minutely points
LISTING_PAGE = {"vs_currency": "usd", "order": "market_cap_desc", "per_page": 250, "page": 1}
PRO_HOST = "pro-api.coingecko.com"
# Seconds between requests by plan: keyless ~10/min (inside 5-15), Demo 24/min of 30, Pro 240/min.
PACE = {"keyless": 6.0, "demo": 2.5, "pro": 0.25}
# After CoinGecko refuses the key (401/403), say so from memory for this long instead of spending
# calls that would all be refused.
REFUSAL_HOLD_SECONDS = 300.0


@dataclass(frozen=True)
class Series:
    """One CoinGecko response that candles are built from."""

    endpoint: str  # "market_chart" (price points) or "ohlc" (candles)
    days: int
    cache_seconds: float
    granularity: str | None  # the OHLC candle body; None for price points


POINTS = Series("market_chart", 1, 300.0, None)
HALF_HOURS = Series("ohlc", 1, 900.0, "30m")
FOUR_HOURS = Series("ohlc", 30, 1800.0, "4h")
BUILT_FROM = {"1m": POINTS, "5m": POINTS, "15m": POINTS, "30m": HALF_HOURS, "1h": HALF_HOURS,
              "4h": FOUR_HOURS, "1d": FOUR_HOURS, "1w": FOUR_HOURS}


class CoinGecko(Exchange):
    name = "coingecko"
    aggregator = True
    budget = ("keyless ~5-15 calls/min per IP, Demo key ~30/min and 10,000/month, paid 250+/min; "
              "cryptosite ~2.2 calls/min for 4 coins (1 + 0.3 per coin)")
    timestamps = ("CoinGecko's last_updated_at: when it last recomputed its price across venues (about every 60 s), "
                  "not a trade's time; candles open at their timestamp (CoinGecko prints close times, converted here)")
    min_interval = PACE["keyless"]
    min_poll_interval = 60.0

    def __init__(self, base_url: str, timeout: float = 10.0):
        super().__init__(base_url, timeout)
        key = settings.COINGECKO_API_KEY
        plan = "keyless"
        if key:
            plan = "pro" if urlsplit(self.base_url).hostname == PRO_HOST else "demo"
            self.headers = {f"x-cg-{plan}-api-key": key}
        # A key buys a faster pace, never a slower one than the class's.
        self.min_interval = min(type(self).min_interval, PACE[plan])
        self._responses: dict[tuple, tuple[float, Any]] = {}
        self._refusal: tuple[float, ExchangeError] | None = None

    # --- requests ---------------------------------------------------------------------------
    async def _call(self, path: str, params: dict, symbol: str = "") -> Any:
        if self._refusal and time.monotonic() < self._refusal[0]:
            raise ExchangeError(str(self._refusal[1]), self._refusal[1].status)
        status, body = await self._get(path, params, allow_status=(401, 403, 404))
        if status in (401, 403):
            error = self._refused(status, body)
            self._refusal = (time.monotonic() + REFUSAL_HOLD_SECONDS, error)
            raise error
        if status == 404:  # {"error": "coin not found"}; on another path, a wrong base URL
            if symbol:
                raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED)
            raise ExchangeError(f"CoinGecko API error: HTTP 404{_error_text(body)}", BAD_RESPONSE)
        return body

    async def _cached(self, series: Series, coin: str, symbol: str) -> Any:
        path = f"/coins/{coin}/{series.endpoint}"
        key = (path, series.days)
        now = time.monotonic()
        hit = self._responses.get(key)
        if hit and now - hit[0] < series.cache_seconds:
            return hit[1]
        body = await self._call(path, {"vs_currency": "usd", "days": series.days, "precision": "full"}, symbol)
        longest = max(s.cache_seconds for s in BUILT_FROM.values())
        self._responses = {k: v for k, v in self._responses.items() if now - v[0] < longest}
        self._responses[key] = (time.monotonic(), body)
        return body

    def _refused(self, status: int, body: Any) -> ExchangeError:
        """CoinGecko's refusal as a 502: it answered, and with a no (API.md's 401 is about our
        clients' keys, 503 about an exchange out of reach; retrying will not change this answer)."""
        detail = f"HTTP {status}{_error_text(body)}"
        if self.headers:
            what = f"refused the API key in COINGECKO_API_KEY ({detail}); a Demo key goes with api.coingecko.com, a Pro key with {PRO_HOST}"
        elif status == 401:
            what = f"refused the request without an API key ({detail}); set COINGECKO_API_KEY"
        else:
            what = f"refused access ({detail})"
        return ExchangeError(f"CoinGecko {what}", BAD_RESPONSE)

    # --- the adapter ------------------------------------------------------------------------
    async def fetch_listing(self) -> dict[str, str]:
        """Symbol -> coin id among the 250 largest coins. Symbols are not unique on CoinGecko:
        the largest market cap (the first in this order) wins."""
        body = await self._call("/coins/markets", dict(LISTING_PAGE))
        with self.parsing():
            listing: dict[str, str] = {}
            for row in body:
                if row.get("current_price") is not None:
                    listing.setdefault(row["symbol"].upper(), row["id"])
            return listing

    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        wanted = await self.listed(symbols)
        if not wanted:
            return []
        params = {"ids": ",".join(wanted), "vs_currencies": "usd", "include_last_updated_at": "true", "precision": "full"}
        body = await self._call("/simple/price", params)
        with self.parsing():
            quotes = []
            for coin, symbol in wanted.items():
                row = body.get(coin) or {}
                if row.get("usd") is None:
                    continue
                stamp = row.get("last_updated_at")
                quotes.append(Quote(symbol, dec(row["usd"]), int(stamp) * 1000 if stamp is not None else None))
            return quotes

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        coin = await self.market_id(symbol)
        series = BUILT_FROM[timeframe]
        if end_ms + TIMEFRAMES[timeframe] <= now_ms - series.days * DAY:
            return []  # wholly older than CoinGecko serves without a paid plan
        body = await self._cached(series, coin, symbol)
        with self.parsing():
            if series.granularity is None:
                candles = from_points(body["prices"], timeframe, now_ms)
            else:
                base = from_ohlc(body, series.granularity, now_ms)
                candles = base if timeframe == series.granularity else whole_buckets(base, series.granularity, timeframe, now_ms)
        return [c for c in candles if start_ms <= c.open_time <= end_ms]

    async def fetch_book(self, symbol: str, depth: int, now_ms: int):
        raise ExchangeError("CoinGecko is a price aggregator and serves no order book", NOT_LISTED)


def _error_text(body: Any) -> str:
    """CoinGecko's error body, {"status": {"error_code": 10002, "error_message": "..."}} or
    {"error": "..."}, as ': error 10002: ...' (empty when the body says nothing)."""
    if not isinstance(body, dict):
        return ""
    status = body.get("status")
    if isinstance(status, dict) and (status.get("error_message") or status.get("error_code")):
        code = status.get("error_code") or body.get("error_code")
        message = str(status.get("error_message") or "")[:200]
        return f": error {code}: {message}" if code else f": {message}"
    if isinstance(body.get("error"), str):
        return f": {body['error'][:200]}"
    return ""


def from_ohlc(rows: list, granularity: str, now_ms: int) -> list[Candle]:
    """[[close time ms, open, high, low, close], ...] as candles keyed by their open time (the
    bucket of `granularity` that ends at, or contains, the printed time)."""
    zero = Decimal(0)
    by_open: dict[int, Candle] = {}
    for r in rows:
        opened = align(int(r[0]) - 1, granularity)
        by_open[opened] = Candle(opened, dec(r[1]), dec(r[2]), dec(r[3]), dec(r[4]), zero)
    return [by_open[t].with_closed(granularity, now_ms) for t in sorted(by_open)]


def from_points(points: list, timeframe: str, now_ms: int) -> list[Candle]:
    """[[time ms, price], ...] as candles of `timeframe`: each bucket's open, high, low and close
    are the prices inside it. A first bucket the points reach only after one spacing is left out."""
    buckets: dict[int, list[Decimal]] = {}
    ordered = sorted(((int(t), p) for t, p in points if p is not None), key=lambda point: point[0])
    for t, price in ordered:
        buckets.setdefault(align(t, timeframe), []).append(dec(price))
    if ordered and ordered[0][0] - align(ordered[0][0], timeframe) >= POINT_SPACING:
        buckets.pop(align(ordered[0][0], timeframe))
    zero = Decimal(0)
    return [Candle(t, p[0], max(p), min(p), p[-1], zero).with_closed(timeframe, now_ms) for t, p in sorted(buckets.items())]


def whole_buckets(base: list[Candle], base_tf: str, timeframe: str, now_ms: int) -> list[Candle]:
    """`base` (oldest first) aggregated to `timeframe`, keeping only the buckets it covers from
    their start without a hole, to their end unless it is the newest (still filling)."""
    step, size = TIMEFRAMES[base_tf], TIMEFRAMES[timeframe]
    groups: dict[int, list[Candle]] = {}
    for c in base:
        groups.setdefault(align(c.open_time, timeframe), []).append(c)
    newest = max(groups, default=None)
    kept = []
    for start, parts in groups.items():
        if [c.open_time for c in parts] != list(range(start, start + len(parts) * step, step)):
            continue  # starts late or has a hole
        if start != newest and len(parts) * step < size:
            continue  # ends early, though later data exists
        kept.extend(parts)
    return aggregate(kept, timeframe, now_ms)

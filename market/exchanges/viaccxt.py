"""Every other exchange, through ccxt, behind the same adapter base as the native three.

ccxt knows each exchange's endpoints, wire format, error codes and published rate limits; this
adapter turns its unified answers into the project's quotes, candles, books and listings. Three
things are ours rather than ccxt's defaults:

- **HTTP** goes through the adapters' one seam (`http.request`): the shared httpx client of the event
  loop, the timeout, and the 429/418 back-off that every process shares through Redis; ccxt opens no
  aiohttp session, and still reads each answer with its own `handle_errors`, which maps the
  exchange's error codes to its exception classes.
- **Politeness**: each request reserves `cost x rateLimit` in the seam's per-exchange request slots,
  which every thread and event loop of the process share, so the exchange's published limits
  (ccxt's `rateLimit` and per-endpoint costs) hold for the process.
- **Numbers**: JSON numbers are parsed as Decimal and ccxt keeps them as printed strings (tickers,
  candles, book levels), so a price reaches us with every digit the exchange printed (ccxt's default
  would parse it to a float).

How ccxt's client is made to do so lives in serving.ccxt_client (ccxt's methods it replaces, pinned
to the ccxt version it was written for), as does the rule moving its URLs to `base_url`'s host.

Markets: for each base asset, its spot market against USD, else USDT, else USDC (the first the
exchange lists and trades). Candles: the asked timeframe when the exchange serves it, else built
from the largest finer one it serves (as for Coinbase); weeks are always built from UTC days, so a
week starts on Monday 00:00 UTC whatever the exchange's own weekly candle does.

ccxt is imported only when an exchange it serves is configured.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from serving import ccxt_client

from ..domain.candles import Candle, base_window, built
from ..domain.prices import Quote
from ..domain.timeframes import TIMEFRAMES, align
from . import http
from .base import Exchange, dec, make_book
from .errors import BAD_RESPONSE, NOT_LISTED, TIMEOUT, UNREACHABLE, ExchangeError

QUOTES = ("USD", "USDT", "USDC")
DEFAULT_PAGE = 100  # candles per request when ccxt does not say what the exchange allows
RATE_LIMITED_BACKOFF_SECONDS = 60.0


def ccxt_ids() -> list[str]:
    """The exchange ids ccxt serves."""
    import ccxt

    return list(ccxt.exchanges)


class Seam:
    """The adapters' HTTP seam as a ccxt client's transport (serving.ccxt_client)."""

    def __init__(self, adapter: "CcxtExchange"):
        self.adapter = adapter

    async def get(self, url: str, headers: dict | None) -> tuple[int, str, dict, str]:
        adapter = self.adapter
        response = await http.request(adapter.name, adapter.display, url, timeout=adapter.timeout, headers=headers)
        return response.status_code, response.reason_phrase, dict(response.headers), response.text

    async def pace(self, seconds: float) -> None:
        await http.pace(self.adapter.name, seconds)

    def refused(self, status: int) -> Exception:
        # An answer ccxt mapped to none of its errors: the exchange's error, as the native adapters say.
        return ExchangeError(f"{self.adapter.display} API error: HTTP {status}", BAD_RESPONSE)


class CcxtExchange(Exchange):
    """An exchange ccxt serves: `CcxtExchange("okx", base_url, timeout)`; an empty `base_url` keeps
    ccxt's own hosts."""

    def __init__(self, name: str, base_url: str = "", timeout: float = 10.0):
        super().__init__(base_url, timeout)
        self.name = name
        self.client = ccxt_client.client_class(name)(
            {"enableRateLimit": True, "timeout": int(timeout * 1000),
             "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}}
        )
        self.client.transport = Seam(self)
        if self.base_url:
            self.client.urls["api"] = ccxt_client.rebase_urls(self.client.urls["api"], self.base_url)
        self.min_interval = self.client.rateLimit / 1000
        self.budget = f"ccxt's published limits for {self.client.name}: {self.client.rateLimit} ms per request unit"

    @property
    def display(self) -> str:
        return self.client.name

    @contextmanager
    def calling(self, symbol: str = "") -> Iterator[None]:
        """ccxt's exceptions as the contract's statuses."""
        import ccxt

        try:
            with self.parsing():
                yield
        except ExchangeError:
            raise
        except ccxt.BadSymbol:
            raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED) from None
        except ccxt.RequestTimeout:
            raise ExchangeError(f"Request timeout - {self.display} API is not responding", TIMEOUT) from None
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            http.back_off(self.name, RATE_LIMITED_BACKOFF_SECONDS)
            raise ExchangeError(
                f"{self.display} API rate limit reached; backing off {RATE_LIMITED_BACKOFF_SECONDS:.0f}s",
                UNREACHABLE, retry_after=RATE_LIMITED_BACKOFF_SECONDS,
            ) from None
        except ccxt.NetworkError as exc:  # ccxt's message names the URL (a proxy's, maybe): the class only
            raise ExchangeError(f"{self.display} API unavailable ({type(exc).__name__})", UNREACHABLE) from None
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{self.display} API error: {type(exc).__name__}", BAD_RESPONSE) from None

    # --- listings ---------------------------------------------------------------------------
    async def fetch_listing(self) -> dict[str, str]:
        with self.calling():
            markets = await self.client.fetch_markets()
            self.client.set_markets(markets)
        best: dict[str, tuple[int, str]] = {}
        with self.parsing():
            for market in markets:
                if not market.get("spot") or market.get("active") is False or market["quote"] not in QUOTES:
                    continue
                rank, base = QUOTES.index(market["quote"]), market["base"].upper()
                if base not in best or rank < best[base][0]:
                    best[base] = (rank, market["symbol"])
        return {base: symbol for base, (_, symbol) in best.items()}

    # --- prices -----------------------------------------------------------------------------
    async def fetch_quotes(self, symbols: list[str]) -> list[Quote]:
        wanted = await self.listed(symbols)
        if not wanted:
            return []
        with self.calling():
            if self.client.has.get("fetchTickers"):
                tickers = await self.client.fetch_tickers(list(wanted))
            else:
                tickers = {m: await self.client.fetch_ticker(m) for m in wanted}
        with self.parsing():
            return [
                Quote(wanted[market], dec(ticker["last"]), ticker.get("timestamp"))
                for market, ticker in tickers.items()
                if market in wanted and ticker.get("last") is not None
            ]

    # --- candles ----------------------------------------------------------------------------
    def base_timeframe(self, timeframe: str) -> str:
        """The timeframe to fetch: the asked one when the exchange serves it (weeks: from days),
        else the largest of ours it serves that divides it."""
        served = self.client.timeframes or {}
        size = TIMEFRAMES[timeframe]
        candidates = [tf for tf in TIMEFRAMES if tf in served and size % TIMEFRAMES[tf] == 0 and tf != "1w"]
        if timeframe != "1w" and timeframe in candidates:
            return timeframe
        if not candidates:
            raise ExchangeError(f"{self.display} serves no candles for {timeframe}", NOT_LISTED)
        return max(candidates, key=TIMEFRAMES.__getitem__)

    def page_size(self) -> int:
        features = (self.client.features or {}).get("spot") or {}
        return int((features.get("fetchOHLCV") or {}).get("limit") or DEFAULT_PAGE)

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        market = await self.market_id(symbol)
        base_tf = self.base_timeframe(timeframe)
        step, page = TIMEFRAMES[base_tf], self.page_size()
        first, last = base_window(timeframe, base_tf, start_ms, end_ms, now_ms)
        rows: dict[int, Candle] = {}
        cursor = first
        while cursor <= last:
            with self.calling(symbol):
                batch = await self.client.fetch_ohlcv(market, base_tf, since=cursor, limit=page)
            newest = cursor - 1
            with self.parsing():
                for r in batch:
                    t = int(r[0])
                    newest = max(newest, t)
                    if cursor <= t <= last and t == align(t, base_tf):  # an hour or a UTC day, as ours
                        volume = dec(r[5]) if len(r) > 5 and r[5] is not None else Decimal(0)
                        rows[t] = Candle(t, dec(r[1]), dec(r[2]), dec(r[3]), dec(r[4]), volume)
            if newest < cursor:  # nothing newer: the exchange has no more
                break
            cursor = newest + step
        return built(rows, base_tf, timeframe, start_ms, end_ms, now_ms)

    # --- books ------------------------------------------------------------------------------
    async def fetch_book(self, symbol: str, depth: int, now_ms: int):
        market = await self.market_id(symbol)
        with self.calling(symbol):
            book = await self.client.fetch_order_book(market, depth)
        with self.parsing():
            return make_book(self.name, symbol, book["bids"], book["asks"], depth, book.get("timestamp") or now_ms)

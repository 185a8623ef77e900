"""The ccxt adapter (market.exchanges.viaccxt) under the adapters' contract, against recorded documented
responses of OKX, Bybit and Bitstamp, served through the adapters' one HTTP seam.

The payloads keep each exchange's documented envelopes, field names and string-or-number types; where a
documented example has one instrument it is extended with others in the same shape (and with a price of more
digits than a float keeps). Sources: OKX https://www.okx.com/docs-v5/en/ (Get instruments, GET / Ticker, whose
object the tickers endpoint lists, GET / Candlesticks history, GET / Order book, error codes "Public"); Bybit
https://bybit-exchange.github.io/docs/v5/market/ (instrument, tickers, kline, orderbook) and /docs/v5/error;
Bitstamp https://www.bitstamp.net/api/, in the shapes ccxt 4.5.90 records in its bitstamp.py. Candle times are
moved onto whole hours and days where an example's were not.

Bodies are keyed by the path ccxt asks for; a key "<path>?<param>=<value>" answers only requests carrying that
parameter (the candle interval). Pacing is recorded instead of waited for."""

from decimal import Decimal as D

import httpx
import pytest

from market.aio import run
from market.exchanges import http as seam
from market.exchanges.errors import ExchangeError
from market.exchanges.viaccxt import CcxtExchange

from .recorded import Recorded

NOW = 1_800_000_000_000
HOUR, DAY = 3_600_000, 86_400_000
# 2023-03-06 and 2023-03-13 are Mondays; the recorded days run Sunday 12 to Wednesday 15 March 2023.
MONDAY_BEFORE, MONDAY, WEDNESDAY = 1_678_060_800_000, 1_678_665_600_000, 1_678_838_400_000
LONG = "0.0000123456789012345678"  # more significant digits than a float keeps
CREDENTIAL_MARKS = ("key", "sign", "auth", "passphrase", "secret", "token", "nonce")


@pytest.fixture
def recorded(monkeypatch, request):
    server = Recorded(request.cls.name)

    async def pace(exchange: str, seconds: float) -> None:  # recorded replies need no waiting
        server.paced.append((exchange, seconds))

    monkeypatch.setattr(seam, "pace", pace)
    monkeypatch.setattr(seam, "client", server.client)
    return server


def ohlcv(candle) -> tuple:
    return (candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)


def numbers(*row) -> tuple:
    return (row[0], *(D(x) for x in row[1:]))


class CcxtContract:
    name: str
    listing_path: str
    book_path: str
    listing: dict[str, str]  # base -> ccxt symbol
    quotes: dict[str, str]  # base -> the last price as the exchange printed it
    quote_time: int | None
    hourly: list[tuple]  # (open time, o, h, l, c, v) as recorded, oldest first
    daily: tuple[str, str]  # the query parameter that asks the exchange for UTC days
    book: tuple  # (best two bids, best two asks, levels a side recorded, book time)
    unknown_symbol_body: dict | None = None  # the exchange's "instrument does not exist" answer
    rate_limit_body: dict | None = None  # the exchange's "too many requests" answer inside a 200
    error_body: dict  # an error the exchange documents that is neither of those

    def make(self) -> CcxtExchange:
        return CcxtExchange(self.name, "http://exchange.test", timeout=1.0)

    def fails(self, call) -> ExchangeError:
        with pytest.raises(ExchangeError) as err:
            run(call)
        return err.value

    # --- listing ----------------------------------------------------------------------------
    def test_the_listing_keeps_spot_markets_against_usd_else_usdt_else_usdc_that_trade(self, recorded):
        assert run(self.make().listing()) == self.listing

    # --- quotes -----------------------------------------------------------------------------
    def test_quotes_keep_every_digit_the_exchange_printed(self, recorded):
        assert D(repr(float(LONG))) != D(LONG)  # the long price would not survive a float
        quotes = run(self.make().fetch_quotes(["BTC", "ETH", "PEPE", "DOGE"]))
        assert {q.symbol: q.price for q in quotes} == {symbol: D(price) for symbol, price in self.quotes.items()}
        assert {q.symbol: str(q.price) for q in quotes} == self.quotes  # trailing zeros included
        assert all(isinstance(q.price, D) for q in quotes)
        assert next(q for q in quotes if q.symbol == "BTC").timestamp_ms == self.quote_time

    # --- candles ----------------------------------------------------------------------------
    def test_candles_come_oldest_first_in_the_exchanges_column_order_closed_against_now(self, recorded):
        first, last = self.hourly[0][0], self.hourly[-1][0]
        candles = run(self.make().fetch_candles("BTC", "1h", first, last, last + HOUR // 2))
        assert [ohlcv(c) for c in candles] == [numbers(*row) for row in self.hourly]
        assert [c.closed for c in candles] == [True, True, False]

    def test_weeks_are_built_from_utc_days_and_start_on_monday(self, recorded):
        candles = run(self.make().fetch_candles("BTC", "1w", MONDAY_BEFORE, MONDAY, WEDNESDAY + DAY // 2))
        # Recorded days (o, h, l, c, v): Sun 12 March 20450.1 20600.0 20100.5 20590.2 1200.5; Mon 20590.2 22700.0
        # 20500.0 22150.3 3000.25; Tue 22150.3 24900.0 22000.1 24700.0 4100.125; Wed 24700.0 24950.5 23900.0 24300.7 2500.
        assert [ohlcv(c) for c in candles] == [
            numbers(MONDAY_BEFORE, "20450.1", "20600.0", "20100.5", "20590.2", "1200.5"),  # Sunday ends its week
            numbers(MONDAY, "20590.2", "24950.5", "20500.0", "24300.7", "9600.375"),
        ]
        assert [c.closed for c in candles] == [True, False]
        asked = [r for r in recorded.requests if r.url.path != self.listing_path]
        param, value = self.daily
        assert asked and all(r.url.params[param] == value for r in asked)  # never the exchange's own week

    # --- book -------------------------------------------------------------------------------
    def test_the_book_keeps_the_exchanges_numbers_best_first_cut_to_depth(self, recorded):
        bids, asks, levels, stamp = self.book
        book = run(self.make().fetch_book("BTC", 2, NOW))
        assert (book.bids, book.asks, book.timestamp_ms) == (bids, asks, stamp)
        full = run(self.make().fetch_book("BTC", 20, NOW))
        assert len(full.bids) == len(full.asks) == levels
        assert [D(p) for p, _ in full.bids] == sorted((D(p) for p, _ in full.bids), reverse=True)
        assert [D(p) for p, _ in full.asks] == sorted(D(p) for p, _ in full.asks)

    # --- unknown symbols --------------------------------------------------------------------
    def test_a_symbol_the_exchange_does_not_list_is_404_without_asking_for_it(self, recorded):
        adapter = self.make()
        assert self.fails(adapter.market_id("NOPE")).status == 404
        assert self.fails(adapter.fetch_book("NOPE", 5, NOW)).status == 404
        assert self.fails(adapter.fetch_candles("NOPE", "1h", NOW - HOUR, NOW, NOW)).status == 404
        assert {r.url.path for r in recorded.requests} == {self.listing_path}

    def test_the_exchanges_own_instrument_does_not_exist_answer_is_404(self, recorded):
        if self.unknown_symbol_body is None:
            pytest.skip(f"ccxt maps no documented {self.name} answer to BadSymbol")
        recorded.answers[self.book_path] = httpx.Response(200, json=self.unknown_symbol_body)
        assert self.fails(self.make().fetch_book("BTC", 5, NOW)).status == 404

    # --- failures ---------------------------------------------------------------------------
    @pytest.mark.parametrize("status", [429, 418])
    def test_rate_limit_answers_make_us_back_off_without_calling_again(self, recorded, status):
        recorded.override = httpx.Response(status, headers={"Retry-After": "30"}, json={})
        adapter = self.make()
        first, second = self.fails(adapter.listing()), self.fails(adapter.listing())
        assert first.status == second.status == 503
        assert 25 <= second.retry_after <= 30
        assert len(recorded.requests) == 1

    def test_the_exchanges_rate_limit_body_makes_us_back_off(self, recorded):
        if self.rate_limit_body is None:
            pytest.skip(f"ccxt maps no documented {self.name} answer to RateLimitExceeded")
        recorded.answers[self.listing_path] = httpx.Response(200, json=self.rate_limit_body)
        adapter = self.make()
        first, second = self.fails(adapter.listing()), self.fails(adapter.listing())
        assert first.status == second.status == 503
        assert first.retry_after == 60 and 55 <= second.retry_after <= 60
        assert len(recorded.requests) == 1

    def test_another_error_the_exchange_documents_is_502(self, recorded):
        recorded.answers[self.listing_path] = httpx.Response(200, json=self.error_body)
        assert self.fails(self.make().listing()).status == 502

    def test_a_timeout_is_504(self, recorded):
        recorded.override = httpx.ReadTimeout("slow")
        assert self.fails(self.make().listing()).status == 504

    def test_an_unreachable_exchange_is_503(self, recorded):
        recorded.override = httpx.ConnectError("refused")
        assert self.fails(self.make().listing()).status == 503

    def test_an_unparseable_body_is_502(self, recorded):
        recorded.override = httpx.Response(200, content=b"<html>maintenance</html>")
        assert self.fails(self.make().listing()).status == 502

    # --- manners ----------------------------------------------------------------------------
    def test_requests_are_plain_gets_without_credentials(self, recorded):
        adapter = self.make()
        run(adapter.fetch_quotes(["BTC", "ETH"]))
        run(adapter.fetch_candles("BTC", "1h", self.hourly[0][0], self.hourly[-1][0], NOW))
        run(adapter.fetch_book("BTC", 5, NOW))
        assert len(recorded.requests) >= 4
        for r in recorded.requests:
            assert r.method == "GET" and not r.content
            named = [n.lower() for n in r.headers] + [n.lower() for n in r.url.params]
            assert not [n for n in named if any(mark in n for mark in CREDENTIAL_MARKS)], r

    def test_every_request_waits_its_turn_at_ccxts_published_rate(self, recorded):
        adapter = self.make()
        run(adapter.fetch_quotes(["BTC", "ETH"]))
        run(adapter.fetch_book("BTC", 5, NOW))
        reserved = [(exchange, seconds) for exchange, seconds in recorded.paced if seconds > 0]
        assert len(reserved) == len(recorded.requests) == 3
        assert {exchange for exchange, _ in reserved} == {self.name}
        # ccxt's rateLimit times the endpoint's cost (OKX's book costs half a unit, Bybit's endpoints five)
        assert all(0 < seconds * 1000 / adapter.client.rateLimit <= 5 for _, seconds in reserved)


class TestOkx(CcxtContract):
    name, listing_path, book_path = "okx", "/api/v5/public/instruments", "/api/v5/market/books"
    listing = {"BTC": "BTC/USDT", "ETH": "ETH/USDT", "PEPE": "PEPE/USDT"}  # BTC-USDC ranks after; SOL suspended
    quotes = {"BTC": "9999.99", "ETH": "2222.220", "PEPE": LONG}
    quote_time = 1597026383085
    # [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]: for spot the volume is vol, in the base currency.
    hourly = [(1678874400000, "3.721", "3.743", "3.677", "3.708", "8422410"),
              (1678878000000, "3.731", "3.799", "3.494", "3.72", "24912403"),
              (1678881600000, "3.72", "3.75", "3.70", "3.74", "1000")]
    daily = ("bar", "1Dutc")
    book = ((("41006.3", "0.30178218"), ("41005.9", "0.5")), (("41006.8", "0.60038921"), ("41007.3", "0.30178218")),
            3, 1629966436396)
    unknown_symbol_body = {"code": "51001", "data": [], "msg": "Instrument ID, Instrument ID code or Spread ID doesn't exist."}
    rate_limit_body = {"code": "50011", "data": [],
                       "msg": "Rate limit reached. Please refer to API documentation and throttle requests accordingly."}
    error_body = {"code": "1", "data": [], "msg": "Operation failed."}

    def test_only_spot_instruments_and_tickers_are_asked_for(self, recorded):
        run(self.make().fetch_quotes(["BTC"]))
        assert [r.url.params["instType"] for r in recorded.requests] == ["SPOT", "SPOT"]

    def test_the_exchange_busy_is_503_naming_neither_the_url_nor_the_body(self, recorded):
        # OKX documents 50013 "System is busy" (ccxt: ExchangeNotAvailable); ccxt's message carries the
        # URL (an operator's proxy, maybe with credentials) and the body: the client sees neither.
        recorded.answers[self.listing_path] = httpx.Response(200, json={"code": "50013", "data": [], "msg": "System is busy"})
        error = self.fails(self.make().listing())
        assert error.status == 503 and "exchange.test" not in str(error) and "busy" not in str(error)


class TestBybit(CcxtContract):
    name, listing_path, book_path = "bybit", "/v5/market/instruments-info", "/v5/market/orderbook"
    listing = {"BTC": "BTC/USDT", "ETH": "ETH/USDT", "LINK": "LINK/USDC", "PEPE": "PEPE/USDT"}
    quotes = {"BTC": "20533.13", "ETH": "1550.10", "PEPE": LONG}
    quote_time = None  # Bybit's tickers carry no time of their own
    # [startTime, open, high, low, close, volume, turnover]: the documented rows, served newest first.
    hourly = [(1670601600000, "17086.5", "17088", "16978", "17071.5", "6356"),
              (1670605200000, "17071.5", "17071.5", "17061", "17071", "4177"),
              (1670608800000, "17071", "17073", "17027", "17055.5", "268611")]
    daily = ("interval", "D")
    book = ((("16638.27", "0.305749"), ("16638.00", "0.5")), (("16638.64", "0.008479"), ("16638.80", "0.1")),
            3, 1672765737733)
    # ccxt's record of Bybit's answer for a symbol it does not serve (retCode 10001 is "Request parameter error").
    unknown_symbol_body = {"retCode": 10001, "retMsg": "Not supported symbols", "result": {}, "retExtInfo": {}, "time": 1726147060461}
    rate_limit_body = {"retCode": 10006, "retMsg": "Too many visits. Exceeded the API Rate Limit.", "result": {},
                       "retExtInfo": {}, "time": 1672765737734}
    error_body = {"retCode": 10016, "retMsg": "Internal System Error.", "result": {}, "retExtInfo": {}, "time": 1672765737734}

    def test_only_the_spot_category_is_asked_for(self, recorded):
        run(self.make().fetch_quotes(["BTC"]))
        assert [r.url.params["category"] for r in recorded.requests] == ["spot", "spot"]

    def test_a_parameter_error_is_not_taken_for_an_unknown_symbol(self, recorded):
        recorded.answers[self.book_path] = httpx.Response(
            200, json={**self.unknown_symbol_body, "retMsg": "Request parameter error."})
        assert self.fails(self.make().fetch_book("BTC", 5, NOW)).status == 502


class TestBitstamp(CcxtContract):
    name, listing_path, book_path = "bitstamp", "/api/v2/markets/", "/api/v2/order_book/btcusd/"
    listing = {"BTC": "BTC/USD", "ETH": "ETH/USD", "PEPE": "PEPE/USD"}  # XRP disabled; the perpetual is not spot
    quotes = {"BTC": "26216", "ETH": "1870.50", "PEPE": LONG}
    quote_time = 1686068944000  # Bitstamp prints seconds
    # {"high", "timestamp" (seconds), "volume", "low", "close", "open"}, oldest first.
    hourly = [(1593961200000, "9040.87", "9064.77", "9040.87", "9064.77", "18.49436608"),
              (1593964800000, "9064.66", "9071.59", "9058.76", "9061.07", "3.48631711"),
              (1593968400000, "9067.33", "9067.33", "9061.94", "9061.94", "0.04142833")]
    daily = ("step", "86400")  # ccxt's own "1w" for Bitstamp is step 259200: three days
    book = ((("8750.00", "1.33685271"), ("8749.39", "0.07700000")), (("8754.10", "1.51995636"), ("8754.71", "1.40000000")),
            3, 1583652948955)  # from the microtimestamp
    error_body = {"status": "error", "reason": {"__all__": ["Unknown validation error."]}, "response_code": "400.001"}

    def test_all_prices_come_in_one_call(self, recorded):
        run(self.make().fetch_quotes(["BTC", "ETH", "PEPE"]))
        assert len(recorded.asked("/api/v2/ticker/")) == 1


def test_ccxt_orders_book_levels_as_numbers_and_keeps_them_as_printed():
    # ccxt sorts the levels it parses (and for some exchanges then cuts them to the limit): across a power of
    # ten, text order would rank "10000.20" below "9999.95".
    client = CcxtExchange("okx").client
    book = client.parse_order_book({"bids": [["9999.5", "0.50"], ["9999.90", "1.0"]],
                                    "asks": [["10000.20", "2"], ["9999.95", "0.1"]]}, "BTC/USDT")
    assert book["bids"] == [["9999.90", "1.0"], ["9999.5", "0.50"]]
    assert book["asks"] == [["9999.95", "0.1"], ["10000.20", "2"]]

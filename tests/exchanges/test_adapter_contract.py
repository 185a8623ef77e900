"""One contract, run against every exchange adapter with payloads recorded from each
exchange's documented responses, served through the adapters' one HTTP seam."""

from decimal import Decimal as D

import httpx
import pytest

from market.aio import run
from market.exchanges import Binance, Coinbase, Kraken
from market.exchanges import http as seam
from market.exchanges.errors import ExchangeError

from .recorded import Recorded

NOW = 1_800_000_000_000


@pytest.fixture
def recorded(monkeypatch, request):
    server = Recorded(request.cls.name)
    monkeypatch.setattr(request.cls.adapter, "min_interval", 0.0)  # recorded replies need no pacing
    monkeypatch.setattr(seam, "client", server.client)
    return server


class AdapterContract:
    name: str
    adapter: type
    expected_quotes: dict
    expected_candle: tuple  # (symbol, timeframe, start, end, first candle open_time, o, h, l, c, v)

    def make(self):
        return self.adapter("http://exchange.test", timeout=1.0)

    def test_listing_keeps_only_usd_markets_that_trade(self, recorded):
        listing = run(self.make().listing())
        assert set(listing) == {"BTC", "ETH"}

    def test_quotes_keep_every_digit_the_exchange_printed(self, recorded):
        quotes = run(self.make().fetch_quotes(["BTC", "ETH", "DOGE"]))
        assert {q.symbol: q.price for q in quotes} == self.expected_quotes
        assert all(isinstance(q.price, D) for q in quotes)

    def test_candles_are_parsed_in_the_exchanges_own_column_order(self, recorded):
        symbol, tf, start, end, first, *ohlcv = self.expected_candle
        candles = run(self.make().fetch_candles(symbol, tf, start, end, NOW))
        assert candles[0].open_time == first
        assert [candles[0].open, candles[0].high, candles[0].low, candles[0].close, candles[0].volume] == [D(x) for x in ohlcv]
        assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)
        assert all(c.closed for c in candles)

    def test_the_book_keeps_the_exchanges_numbers_best_first(self, recorded):
        book = run(self.make().fetch_book("BTC", 1, NOW))
        bid, ask, stamp = self.expected_book
        assert (book.bids, book.asks, book.timestamp_ms) == ((bid,), (ask,), stamp)
        full = run(self.make().fetch_book("BTC", 20, NOW))
        assert len(full.bids) == len(full.asks) == 2 and full.bids[0] == bid and full.asks[0] == ask

    def test_a_symbol_the_exchange_does_not_list_is_404(self, recorded):
        with pytest.raises(ExchangeError) as err:
            run(self.make().market_id("NOPE"))
        assert err.value.status == 404

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_an_exchange_server_error_is_502(self, recorded, status):
        recorded.override = httpx.Response(status, text="oops")
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 502

    def test_an_unparseable_body_is_502(self, recorded):
        recorded.override = httpx.Response(200, content=b"<html>maintenance</html>")
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 502

    def test_a_body_of_the_wrong_shape_is_502(self, recorded):
        recorded.override = httpx.Response(200, json={"unexpected": True})
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 502

    def test_a_timeout_is_504(self, recorded):
        recorded.override = httpx.ReadTimeout("slow")
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 504

    def test_an_unreachable_exchange_is_503(self, recorded):
        recorded.override = httpx.ConnectError("refused")
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 503

    @pytest.mark.parametrize("status", [429, 418])
    def test_rate_limit_answers_make_us_back_off_without_calling_again(self, recorded, status):
        recorded.override = httpx.Response(status, headers={"Retry-After": "30"}, json={"code": -1003})
        adapter = self.make()
        with pytest.raises(ExchangeError) as first:
            run(adapter.listing())
        with pytest.raises(ExchangeError) as second:
            run(adapter.listing())
        assert first.value.status == second.value.status == 503
        assert 25 <= second.value.retry_after <= 30
        assert len(recorded.requests) == 1


class TestBinance(AdapterContract):
    name, adapter = "binance", Binance
    expected_book = (("4.00000000", "431.00000000"), ("4.00000200", "12.00000000"), NOW)  # no time in the body
    expected_quotes = {"BTC": D("50000.50000000"), "ETH": D("2000.12345678")}
    expected_candle = ("BTC", "1h", 1499040000000, 1499043600000, 1499040000000,
                       "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815")

    def test_all_tracked_prices_come_in_one_call(self, recorded):
        run(self.make().fetch_quotes(["BTC", "ETH"]))
        calls = [r for r in recorded.requests if r.url.path == "/api/v3/ticker/price"]
        assert len(calls) == 1
        assert calls[0].url.params["symbols"] == '["BTCUSDT","ETHUSDT"]'


class TestCoinbase(AdapterContract):
    name, adapter = "coinbase", Coinbase
    expected_book = (("295.96", "4.39088265"), ("295.97", "25.23542881"), 1663602692000)
    expected_quotes = {"BTC": D("6268.48"), "ETH": D("150.00")}
    # Coinbase rows are [time, low, high, open, close, volume], newest first.
    expected_candle = ("BTC", "1h", 1415397600000, 1415404800000, 1415398800000,
                       "0.31", "0.36", "0.30", "0.35", "1.25000001")

    def test_the_ticker_time_becomes_the_tick_time(self, recorded):
        quotes = run(self.make().fetch_quotes(["BTC"]))
        assert quotes[0].timestamp_ms == 1584663777833


class TestKraken(AdapterContract):
    name, adapter = "kraken", Kraken
    expected_book = (("30297.00000", "0.115"), ("30384.10000", "2.059"), 1688671659000)
    expected_quotes = {"BTC": D("30303.20000"), "ETH": D("1870.05")}
    expected_candle = ("BTC", "1h", 1688671200000, 1688674800000, 1688671200000,
                       "30306.1", "30306.2", "30305.7", "30305.7", "3.39243896")

    def test_bitcoin_is_asked_for_by_krakens_own_pair_name(self, recorded):
        run(self.make().fetch_quotes(["BTC"]))
        ticker = [r for r in recorded.requests if r.url.path == "/0/public/Ticker"][0]
        assert ticker.url.params["pair"] == "XXBTZUSD"

    def test_an_error_inside_a_200_body_is_mapped(self, recorded):
        recorded.override = httpx.Response(200, json={"error": ["EService:Unavailable"]})
        with pytest.raises(ExchangeError) as err:
            run(self.make().listing())
        assert err.value.status == 503

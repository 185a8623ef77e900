"""CoinGecko: the adapter against its documented responses (recorded, served through the adapters'
one HTTP seam), and against the sandbox's CoinGecko, timeframe by timeframe."""

from decimal import Decimal as D

import httpx
import pytest

from market.aio import run
from market.domain.candles import Candle
from market.domain.timeframes import TIMEFRAMES, align
from market.exchanges import http as seam
from market.exchanges.coingecko import CoinGecko, whole_buckets
from market.exchanges.errors import ExchangeError
from sandbox.server import Market

from .recorded import Recorded

NOW = 1_709_510_520_000  # 2024-03-04 00:02 UTC, just after the recorded data
HOUR = TIMEFRAMES["1h"]
DAY = TIMEFRAMES["1d"]


@pytest.fixture
def recorded(monkeypatch, settings):
    settings.COINGECKO_API_KEY = ""
    server = Recorded("coingecko", strip="/api/v3", not_found={"error": "coin not found"})
    monkeypatch.setattr(CoinGecko, "min_interval", 0.0)  # recorded replies need no pacing
    monkeypatch.setattr(seam, "client", server.client)
    return server


def make(url: str = "http://coingecko.test/api/v3") -> CoinGecko:
    return CoinGecko(url, timeout=1.0)


def candles(adapter, timeframe, start=NOW - DAY, end=NOW, now=NOW, symbol="BTC"):
    return run(adapter.fetch_candles(symbol, timeframe, start, end, now))


def ohlc(c) -> list:
    return [c.open, c.high, c.low, c.close]


# --- the recorded, documented responses --------------------------------------------------------

def test_it_is_an_aggregator_with_its_budget_written_down():
    assert CoinGecko.aggregator and CoinGecko.name == "coingecko"
    assert "calls/min" in CoinGecko.budget and CoinGecko.min_poll_interval >= 60
    assert "CoinGecko" in CoinGecko.timestamps and "last_updated_at" in CoinGecko.timestamps


def test_the_listing_maps_symbols_to_coin_ids_and_the_largest_coin_wins_a_shared_symbol(recorded):
    assert run(make().listing()) == {"BTC": "bitcoin", "ETH": "ethereum"}
    listing = [r for r in recorded.requests if r.url.path.endswith("/coins/markets")][0]
    assert dict(listing.url.params) == {"vs_currency": "usd", "order": "market_cap_desc", "per_page": "250", "page": "1"}


def test_a_symbol_coingecko_does_not_list_is_404(recorded):
    with pytest.raises(ExchangeError) as err:
        run(make().market_id("NOPE"))
    assert err.value.status == 404


def test_quotes_keep_every_digit_and_coingeckos_update_time_in_one_call(recorded):
    quotes = run(make().fetch_quotes(["BTC", "ETH", "DOGE"]))
    assert {q.symbol: (q.price, q.timestamp_ms) for q in quotes} == {
        "BTC": (D("67187.3358936566"), 1711356300000), "ETH": (D("3396.56123432145678901"), 1711356290000)}
    [call] = [r for r in recorded.requests if r.url.path.endswith("/simple/price")]
    assert dict(call.url.params) == {"ids": "bitcoin,ethereum", "vs_currencies": "usd", "include_last_updated_at": "true",
                                     "precision": "full"}


def test_ohlc_times_are_close_times_and_become_open_times(recorded):
    four_hours = candles(make(), "4h", start=0)
    # The docs' first row, [1709395200000, 61942, 62211, 61721, 61845], closed at 16:00: it opened at 12:00.
    assert four_hours[0].open_time == 1_709_395_200_000 - 4 * HOUR
    assert ohlc(four_hours[0]) == [D(61942), D(62211), D(61721), D(61845)]
    assert [c.open_time for c in four_hours] == list(range(four_hours[0].open_time, NOW, 4 * HOUR))
    assert [c.closed for c in four_hours][-2:] == [True, False]  # only the candle opened at 00:00 is still open
    assert all(c.volume == 0 for c in four_hours)  # CoinGecko prints no volume


def test_half_hours_keep_every_digit_and_make_whole_hours_only(recorded):
    half = candles(make(), "30m")
    assert half[0].open_time == 1_709_501_400_000 and ohlc(half[1])[1] == D("62700.9876543210")
    hours = candles(make(), "1h")
    # 21:00 is left out: the data starts at 21:30. 22:00 and 23:00 are two half hours each; 00:00 is filling.
    assert [c.open_time for c in hours] == [NOW - 120_000 - 2 * HOUR, NOW - 120_000 - HOUR, NOW - 120_000]
    assert ohlc(hours[0]) == [D("62640.1234567891"), D("62720"), D("62500.01"), D("62510.4")]
    assert [c.closed for c in hours] == [True, True, False]


def test_days_and_weeks_are_built_from_4h_candles_and_cut_buckets_are_left_out(recorded):
    days = candles(make(), "1d", start=0)
    midnight = NOW - 120_000
    # 2 March starts at 12:00 in the data: no day for it. 3 March is six 4h candles; 4 March is filling.
    assert [c.open_time for c in days] == [midnight - DAY, midnight]
    assert ohlc(days[0]) == [D(62068), D(62810), D(61700), D("62795.12345678")]
    weeks = candles(make(), "1w", start=0)
    # The week of 26 February is cut by the edge of the data; the week of 4 March has begun.
    assert [c.open_time for c in weeks] == [midnight] and align(midnight, "1w") == midnight and not weeks[0].closed


def test_a_bucket_with_a_hole_is_left_out_not_invented():
    march_3 = 1_709_424_000_000
    four = lambda t: Candle(t, D(1), D(2), D(0), D(1), D(0))  # noqa: E731
    base = ([four(march_3 + i * 4 * HOUR) for i in range(5)]  # 3 March without its 20:00 candle
            + [four(march_3 + DAY + i * 4 * HOUR) for i in (0, 2, 3, 4, 5)]  # 4 March without 04:00
            + [four(march_3 + 2 * DAY)])  # 5 March, just begun
    assert [c.open_time for c in whole_buckets(base, "4h", "1d", march_3 + 2 * DAY + HOUR)] == [march_3 + 2 * DAY]


def test_minutes_are_built_from_price_points(recorded):
    fifteen = candles(make(), "15m")
    # 23:15 has only a point at 23:27:10 (more than one 5-minute spacing after its start): left out.
    assert [c.open_time for c in fifteen] == [NOW - 120_000 - 30 * 60_000, NOW - 120_000 - 15 * 60_000, NOW - 120_000]
    assert ohlc(fifteen[0]) == [D("62571.5"), D("62610.0000000001"), D("62571.5"), D("62610.0000000001")]
    five = candles(make(), "5m")
    assert len(five) == 8 and ohlc(five[0]) == [D("62560.1234")] * 4
    assert five[-1].open_time == NOW - 120_000 and not five[-1].closed and all(c.closed for c in five[:-1])
    ones = candles(make(), "1m")
    assert [c.open_time % 300_000 for c in ones[:-1]] == [2 * 60_000] * 7 and len(ones) == 8  # sparse: one minute in five


def test_every_timeframe_of_a_coin_comes_from_three_cached_responses(recorded):
    adapter = make()
    for timeframe in TIMEFRAMES:
        candles(adapter, timeframe, start=0)
        candles(adapter, timeframe, start=0)
    paths = recorded.paths()
    assert sorted(p.rsplit("/", 1)[-1] for p in paths if "/coins/bitcoin/" in p) == ["market_chart", "ohlc", "ohlc"]
    assert len(paths) == 4  # and the listing


def test_a_window_older_than_coingecko_serves_is_empty_without_a_call(recorded):
    adapter = make()
    run(adapter.listing())
    before = len(recorded.requests)
    assert candles(adapter, "1m", start=NOW - 3 * DAY, end=NOW - 2 * DAY) == []
    assert candles(adapter, "1w", start=NOW - 400 * DAY, end=NOW - 200 * DAY) == []
    assert len(recorded.requests) == before


def test_a_coin_coingecko_no_longer_knows_is_404(recorded):
    with pytest.raises(ExchangeError) as err:
        candles(make(), "4h", symbol="ETH")  # listed, but /coins/ethereum/ohlc answers {"error": "coin not found"}
    assert err.value.status == 404


def test_there_is_no_order_book_and_that_is_a_clear_404(recorded):
    with pytest.raises(ExchangeError) as err:
        run(make().fetch_book("BTC", 10, NOW))
    assert err.value.status == 404 and "no order book" in str(err.value)
    assert recorded.requests == []


@pytest.mark.parametrize("url,header", [("http://coingecko.test/api/v3", "x-cg-demo-api-key"),
                                        ("https://pro-api.coingecko.com/api/v3", "x-cg-pro-api-key")])
def test_the_api_key_goes_in_the_header_its_plan_reads(recorded, settings, url, header):
    settings.COINGECKO_API_KEY = "CG-secret"
    run(make(url).fetch_quotes(["BTC"]))
    assert {r.headers.get(header) for r in recorded.requests} == {"CG-secret"}
    assert all(len([h for h in r.headers if h.startswith("x-cg-")]) == 1 for r in recorded.requests)


def test_without_a_key_no_key_header_is_sent(recorded):
    run(make().fetch_quotes(["BTC"]))
    assert not any(h.startswith("x-cg-") for r in recorded.requests for h in r.headers)


@pytest.mark.parametrize("status,body,key", [
    (401, {"status": {"timestamp": "2024-04-01T00:00:00.000+00:00", "error_code": 10002,
                      "error_message": "API Key Missing. Please make sure you're using the right authentication method."}}, ""),
    (401, {"status": {"error_code": 10010, "error_message": "If you are using Pro API key, please change your root URL "
                      "from api.coingecko.com to pro-api.coingecko.com"}}, "CG-wrong"),
    (403, {"status": {"error_code": 1020, "error_message": "Access denied"}}, "CG-wrong"),
])
def test_a_refused_key_is_a_clear_502_and_is_not_asked_again_for_a_while(recorded, settings, status, body, key):
    settings.COINGECKO_API_KEY = key
    recorded.override = httpx.Response(status, json=body)
    adapter = make()
    with pytest.raises(ExchangeError) as first:
        run(adapter.listing())
    assert first.value.status == 502
    assert "refused" in str(first.value) and f"HTTP {status}" in str(first.value)
    assert body["status"]["error_message"][:40] in str(first.value)
    assert ("COINGECKO_API_KEY" in str(first.value)) == (status == 401 or bool(key))
    with pytest.raises(ExchangeError) as again:
        run(adapter.fetch_quotes(["BTC"]))
    assert str(again.value) == str(first.value) and len(recorded.requests) == 1


def test_a_rate_limit_answer_backs_off_without_calling_again(recorded):
    recorded.override = httpx.Response(429, json={"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
                                       headers={"Retry-After": "30"})
    adapter = make()
    for _ in range(2):
        with pytest.raises(ExchangeError) as err:
            run(adapter.listing())
        assert err.value.status == 503 and 25 <= err.value.retry_after <= 30
    assert len(recorded.requests) == 1


@pytest.mark.parametrize("override,status", [(httpx.Response(500, text="oops"), 502), (httpx.Response(200, json={"bitcoin": 1}), 502),
                                             (httpx.ReadTimeout("slow"), 504), (httpx.ConnectError("refused"), 503)])
def test_other_failures_keep_the_contracts_statuses(recorded, override, status):
    adapter = make()
    adapter._listing, adapter._listing_at = {"BTC": "bitcoin"}, float("inf")
    recorded.override = override
    with pytest.raises(ExchangeError) as err:
        run(adapter.fetch_quotes(["BTC"]))
    assert err.value.status == status


# --- against the sandbox's CoinGecko -----------------------------------------------------------

FROZEN_S = 1_795_000_123.456  # a fixed moment, so the sandbox's prices hold still during a test


@pytest.fixture
def gecko(sandbox, settings, monkeypatch):
    settings.COINGECKO_API_KEY = ""
    market = Market(clock=lambda: FROZEN_S)
    monkeypatch.setattr(sandbox.RequestHandlerClass, "market", market)
    monkeypatch.setattr(CoinGecko, "min_interval", 0.0)
    return CoinGecko(settings.EXCHANGE_API_URLS["coingecko"], timeout=5.0), market


def test_the_sandbox_lists_every_coin_by_its_coingecko_id(gecko):
    adapter, market = gecko
    listing = run(adapter.listing())
    assert set(listing) == set(market.symbols)
    assert (listing["BTC"], listing["ETH"], listing["ADA"]) == ("bitcoin", "ethereum", "cardano")


def test_sandbox_quotes_are_the_markets_prices_exactly(gecko):
    adapter, market = gecko
    quotes = run(adapter.fetch_quotes(["BTC", "ETH", "SOL", "ADA", "SHIB"]))
    assert {q.symbol: q.price for q in quotes} == {s: market.price("coingecko", s) for s in ("BTC", "ETH", "SOL", "ADA", "SHIB")}
    assert {q.timestamp_ms for q in quotes} == {market.now_ms() // 1000 * 1000}


@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_every_timeframe_comes_from_the_sandbox_aligned_and_oldest_first(gecko, timeframe):
    adapter, market = gecko
    now, size = market.now_ms(), TIMEFRAMES[timeframe]
    reach = DAY if size <= HOUR else 30 * DAY
    got = candles(adapter, timeframe, start=now - reach, end=now, now=now)
    assert got, timeframe
    assert all(align(c.open_time, timeframe) == c.open_time for c in got)
    assert [c.open_time for c in got] == sorted({c.open_time for c in got})
    assert all(c.closed for c in got[:-1]) and not got[-1].closed
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in got)
    if timeframe in ("30m", "1h", "4h", "1d", "1w"):  # CoinGecko's own candles, or whole buckets of them
        truth = {c.open_time: ohlc(c) for c in market.candles("coingecko", "BTC", timeframe, got[0].open_time, now)}
        assert {c.open_time: ohlc(c) for c in got} == truth
    else:  # each bucket's points: the price at the start of every 5 minutes, and one at now
        fives = {c.open_time: c.open for c in market.candles("coingecko", "BTC", "5m", got[0].open_time, now)}
        assert all(c.open == fives[c.open_time] for c in got if c.open_time in fives)
        assert got[-1].close == market.price("coingecko", "BTC")


def test_an_unknown_coin_and_a_book_are_404_from_the_sandbox(gecko):
    adapter, _ = gecko
    for call in (adapter.fetch_candles("NOPE", "1h", 0, 1, 2), adapter.fetch_book("BTC", 5, 0)):
        with pytest.raises(ExchangeError) as err:
            run(call)
        assert err.value.status == 404

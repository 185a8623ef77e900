"""The sandbox's OKX and Bybit, read by ccxt's own async clients configured as the project configures
them (spot markets only, every API URL pointed at the sandbox, numbers kept as the strings the
exchange printed), against the simulated market stopped at one moment so that every answer can be
recomputed from it."""

import asyncio
import copy
import time
from decimal import Decimal as D

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from market.domain.timeframes import TIMEFRAMES, align
from sandbox.server import Market
from tests.conftest import request_count

VENUES = ("okx", "bybit")
MINUTE = TIMEFRAMES["1m"]
# The raw endpoints behind ccxt's unified calls, to read what the sandbox printed.
RAW_TICKER = {"okx": ("publicGetMarketTicker", {"instId": "BTC-USDT"}, "last"),
              "bybit": ("publicGetV5MarketTickers", {"category": "spot", "symbol": "BTCUSDT"}, "lastPrice")}
RAW_BOOK = {"okx": ("publicGetMarketBooks", {"instId": "BTC-USDT"}, "sz"),
            "bybit": ("publicGetV5MarketOrderbook", {"category": "spot", "symbol": "BTCUSDT"}, "limit")}


@pytest.fixture
def market(sandbox) -> Market:
    """The sandbox's market stopped now: prices, books and the open candle hold still."""
    now = time.time()
    frozen = Market(clock=lambda: now)
    sandbox.RequestHandlerClass.market = frozen
    # The handler writes headers and body apart; without TCP_NODELAY every answer on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK.
    sandbox.RequestHandlerClass.disable_nagle_algorithm = True
    return frozen


def make_client(venue: str, base_url: str):
    client = getattr(ccxt_async, venue)(
        {"enableRateLimit": False, "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}})
    client.number = str  # as the project reads ccxt: every digit the exchange printed
    client.timeout_on_exit = 0  # ccxt's close() waits 250 ms for TLS connections to wind down; loopback has none
    if venue == "okx":
        client.urls["api"] = {"rest": f"{base_url}/okx"}
    else:
        client.urls["api"] = {key: f"{base_url}/{venue}" for key in client.urls["api"]}
    return client


def using(venue: str, sandbox, work, extra_markets: tuple = ()):
    """`work(client)` with the markets the sandbox lists (and `extra_markets`) loaded; the client closed."""

    async def go():
        client = make_client(venue, sandbox.base_url)
        try:
            markets = await client.fetch_markets()
            client.set_markets(markets + [make(markets) for make in extra_markets])
            return await work(client)
        finally:
            await client.close()

    return asyncio.run(go())


def unlisted(markets: list[dict]) -> dict:
    """A market ccxt believes in and the sandbox does not list."""
    fake = copy.deepcopy(next(m for m in markets if m["symbol"] == "BTC/USDT"))
    fake.update(id=fake["id"].replace("BTC", "NOPE"), symbol="NOPE/USDT", base="NOPE", baseId="NOPE")
    return fake


def simulated(market: Market, venue: str, timeframe: str, first: int, last: int) -> list[list]:
    return [[c.open_time, c.open, c.high, c.low, c.close, c.volume]
            for c in market.candles(venue, "BTC", timeframe, first, last)]


def decimals(rows: list[list]) -> list[list]:
    return [[int(r[0]), *(D(v) for v in r[1:6])] for r in rows]


# --- markets and prices -------------------------------------------------------------------------
@pytest.mark.parametrize("venue", VENUES)
def test_every_sandbox_symbol_is_listed_as_a_spot_market_against_usdt(sandbox, market, venue):
    async def loaded(client):
        return client.markets

    markets = using(venue, sandbox, loaded)
    assert set(markets) == {f"{s}/USDT" for s in market.symbols}
    btc = markets["BTC/USDT"]
    assert btc["id"] == {"okx": "BTC-USDT", "bybit": "BTCUSDT"}[venue]
    assert all(m["spot"] and m["type"] == "spot" and m["active"] and not m["contract"] for m in markets.values())
    assert D(str(btc["precision"]["price"])) == D("0.01")


@pytest.mark.parametrize("venue", VENUES)
def test_tickers_last_is_the_simulated_price_with_every_digit(sandbox, market, venue):
    method, params, field = RAW_TICKER[venue]

    async def read(client):
        return (await client.fetch_tickers(["BTC/USDT", "ETH/USDT"]), await client.fetch_ticker("BTC/USDT"),
                await getattr(client, method)(params))

    tickers, one, raw = using(venue, sandbox, read)
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    for symbol, ticker in tickers.items():
        assert D(ticker["last"]) == market.price(venue, symbol.split("/")[0])
    assert D(one["last"]) == market.price(venue, "BTC")
    printed = raw["data"][0] if venue == "okx" else raw["result"]["list"][0]
    assert printed[field] == format(market.price(venue, "BTC").normalize(), "f")
    assert D(one["low"]) <= D(one["last"]) <= D(one["high"])
    assert D(one["bid"]) < D(one["ask"])


# --- candles ------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", VENUES)
def test_candles_of_every_timeframe_since_and_limit_are_the_simulations_window(sandbox, market, venue):
    windows = [(timeframe, back, limit) for timeframe in TIMEFRAMES for back, limit in ((40, 25), (9, 20))]

    async def read(client):  # a window in the past, and one that reaches the open candle
        return [await client.fetch_ohlcv("BTC/USDT", timeframe, since=_since(market, timeframe, back), limit=limit)
                for timeframe, back, limit in windows]

    for (timeframe, back, limit), rows in zip(windows, using(venue, sandbox, read)):
        size, since = TIMEFRAMES[timeframe], _since(market, timeframe, back)
        expected = simulated(market, venue, timeframe, since, since + (limit - 1) * size)
        assert len(expected) == min(limit, back + 1), timeframe
        assert decimals(rows) == expected, timeframe
        assert all(r[0] == align(r[0], timeframe) for r in rows), timeframe


def _since(market: Market, timeframe: str, back: int) -> int:
    return align(market.now_ms(), timeframe) - back * TIMEFRAMES[timeframe]


@pytest.mark.parametrize("venue", VENUES)
def test_paging_by_since_walks_from_history_to_now_without_gaps(sandbox, market, venue):
    now = market.now_ms()
    since = align(now, "1m") - 1600 * MINUTE  # older than the 1,440 candles OKX serves as recent

    async def page(client):
        size = client.features["spot"]["fetchOHLCV"]["limit"]  # what the project asks per page
        rows, cursor, pages = [], since, 0
        while cursor <= now:
            batch = await client.fetch_ohlcv("BTC/USDT", "1m", since=cursor, limit=size)
            if not batch:
                break
            rows, cursor, pages = rows + batch, batch[-1][0] + MINUTE, pages + 1
        return rows, pages

    rows, pages = using(venue, sandbox, page)
    assert pages >= 2
    assert decimals(rows) == simulated(market, venue, "1m", since, now)


def test_okx_confirms_only_closed_candles_and_serves_the_newest_first(sandbox, market):
    async def read(client):
        return await client.publicGetMarketCandles({"instId": "BTC-USDT", "bar": "1H", "limit": "3"})

    data = using("okx", sandbox, read)["data"]
    assert [len(r) for r in data] == [9, 9, 9]
    assert [int(r[0]) for r in data] == [align(market.now_ms(), "1h") - i * TIMEFRAMES["1h"] for i in range(3)]
    assert [r[8] for r in data] == ["0", "1", "1"]


def test_okx_recent_candles_reach_back_1440_and_history_candles_further(sandbox, market):
    older = str(align(market.now_ms(), "1m") - 1500 * MINUTE)  # candles older than this one

    async def read(client):
        query = {"instId": "BTC-USDT", "bar": "1m", "after": older, "limit": "5"}
        return (await client.publicGetMarketCandles(query))["data"], (await client.publicGetMarketHistoryCandles(query))["data"]

    recent, history = using("okx", sandbox, read)
    assert recent == []
    assert [int(r[0]) for r in history] == [int(older) - i * MINUTE for i in range(1, 6)]


def test_bybit_klines_are_newest_first_with_seven_columns(sandbox, market):
    async def read(client):
        return await client.publicGetV5MarketKline({"category": "spot", "symbol": "BTCUSDT", "interval": "60", "limit": "3"})

    answer = using("bybit", sandbox, read)
    assert (answer["retCode"], answer["retMsg"], answer["result"]["category"]) == (0, "OK", "spot")
    rows = answer["result"]["list"]
    assert [len(r) for r in rows] == [7, 7, 7]
    assert [int(r[0]) for r in rows] == [align(market.now_ms(), "1h") - i * TIMEFRAMES["1h"] for i in range(3)]


@pytest.mark.parametrize("venue", VENUES)
def test_a_timeframe_the_simulation_lacks_is_refused_as_the_exchange_refuses_it(sandbox, market, venue):
    with pytest.raises(ccxt.BadRequest):
        using(venue, sandbox, lambda client: client.fetch_ohlcv("BTC/USDT", "3m", limit=5))


# --- books --------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", VENUES)
def test_the_book_has_the_asked_depth_best_first(sandbox, market, venue):
    method, params, size = RAW_BOOK[venue]
    depths = (1, 5, 20, 100)

    async def read(client):
        return [(await client.fetch_order_book("BTC/USDT", depth), await getattr(client, method)({**params, size: str(depth)}))
                for depth in depths]

    for depth, (book, raw) in zip(depths, using(venue, sandbox, read)):
        bids, asks = market.book(venue, "BTC", depth)
        assert len(bids) == len(asks) == depth
        assert [(D(str(p)), D(str(q))) for p, q, *_ in book["bids"]] == bids  # ccxt reads books as floats
        assert [(D(str(p)), D(str(q))) for p, q, *_ in book["asks"]] == asks
        printed = raw["data"][0] if venue == "okx" else {"bids": raw["result"]["b"], "asks": raw["result"]["a"]}
        raw_bids, raw_asks = ([D(level[0]) for level in printed[side]] for side in ("bids", "asks"))
        assert raw_bids == sorted(set(raw_bids), reverse=True) and raw_asks == sorted(set(raw_asks))
        assert len(raw_bids) == len(raw_asks) == depth
        assert raw_bids[0] < market.price(venue, "BTC") < raw_asks[0]


# --- symbols it does not list -------------------------------------------------------------------
@pytest.mark.parametrize("venue", VENUES)
def test_a_symbol_the_sandbox_does_not_list_is_refused_as_a_bad_symbol(sandbox, market, venue):
    calls = (lambda client: client.fetch_ticker("NOPE/USDT"), lambda client: client.fetch_ohlcv("NOPE/USDT", "1h", limit=5),
             lambda client: client.fetch_order_book("NOPE/USDT", 5))

    async def refusals(client):  # ccxt knows NOPE/USDT (as if listed once), the sandbox does not
        out = []
        for call in calls:
            try:
                await call(client)
            except ccxt.BaseError as exc:
                out.append(exc)
        return out

    refused = using(venue, sandbox, refusals, extra_markets=(unlisted,))
    assert [type(exc) for exc in refused] == [ccxt.BadSymbol] * len(calls)
    message = {"okx": "Instrument ID does not exist", "bybit": "Not supported symbols"}[venue]
    assert all(message in str(exc) for exc in refused)


@pytest.mark.parametrize("venue", VENUES)
def test_a_symbol_ccxt_does_not_know_is_a_bad_symbol_before_any_request(sandbox, market, venue):
    async def ask(client):
        before = request_count(sandbox, venue)
        with pytest.raises(ccxt.BadSymbol):
            await client.fetch_ticker("NOPE/USDT")
        return request_count(sandbox, venue) - before

    assert using(venue, sandbox, ask) == 0

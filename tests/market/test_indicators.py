"""Technical indicators: TA-Lib's values against a published worked example and a second library
(talipp) on the same candles; the REST endpoint over the sandbox's candles, warm-up included."""

import time
from decimal import Decimal as D

import pytest
from talipp.indicators import ATR, BB, EMA, MACD, RSI, SMA
from talipp.ohlcv import OHLCV

from market.domain.timeframes import TIMEFRAMES, align
from market.indicators.compute import compute
from market.indicators.spec import parse_indicators
from market.ticks import StoredCandle
from sandbox import simulation as sim

# Wilder's RSI, the worked example StockCharts publishes (closes and 14-day RSI from its table).
WILDER_CLOSES = [44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
                 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
                 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314]
WILDER_RSI = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99, 41.46,
              41.87, 45.46, 37.30, 33.08, 37.77]
HOUR = TIMEFRAMES["1h"]


def candles_of(closes):
    return [StoredCandle(i * HOUR, c, c, c, c, 1.0, True) for i, c in enumerate(closes)]


def simulated(n: int, timeframe: str = "1h") -> list[StoredCandle]:
    now = align(int(time.time() * 1000), timeframe) - 1
    size = TIMEFRAMES[timeframe]
    return [StoredCandle(c.open_time, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume), True)
            for c in sim.series("BTC", timeframe, now - n * size, now, now)]


def test_rsi_reproduces_wilders_worked_example():
    (rsi,) = compute(parse_indicators("rsi:14"), candles_of(WILDER_CLOSES)).values()
    assert rsi[:14] == [None] * 14
    assert [round(v, 2) for v in rsi[14:]] == WILDER_RSI


def close_enough(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def test_each_indicator_agrees_with_a_second_library_on_the_same_candles():
    candles = simulated(600)
    closes = [c.close for c in candles]
    bars = [OHLCV(c.open, c.high, c.low, c.close, c.volume) for c in candles]
    ours = compute(parse_indicators("sma:20,ema:50,rsi:14,macd:12:26:9,bbands:20:2,atr:14"), candles)
    theirs = {
        "sma_20": list(SMA(20, input_values=closes)),
        "ema_50": list(EMA(50, input_values=closes)),
        "rsi_14": list(RSI(14, input_values=closes)),
        "atr_14": list(ATR(14, input_values=bars)),
    }
    for key, values in theirs.items():
        # Past the warm-up both are exact, whatever each seeds its smoothing with.
        for a, b in zip(ours[key][-200:], values[-200:]):
            assert close_enough(a, b), (key, a, b)
    for a, b in zip(ours["macd_12_26_9"][-200:], list(MACD(12, 26, 9, input_values=closes))[-200:]):
        assert close_enough(a["macd"], b.macd) and close_enough(a["signal"], b.signal) and close_enough(a["hist"], b.histogram)
    for a, b in zip(ours["bbands_20_2"][-200:], list(BB(20, 2, input_values=closes))[-200:]):
        assert close_enough(a["upper"], b.ub) and close_enough(a["middle"], b.cb) and close_enough(a["lower"], b.lb)


def test_vwap_weighs_the_typical_price_by_volume_from_each_utc_days_start():
    day = TIMEFRAMES["1d"]
    candles = [StoredCandle(day - HOUR, 10, 12, 8, 10, 1, True),  # the day before: its own session
               StoredCandle(day, 10, 11, 9, 10, 2, True), StoredCandle(day + HOUR, 20, 22, 18, 20, 6, True)]
    (vwap,) = compute(parse_indicators("vwap"), candles).values()
    assert vwap == [10.0, 10.0, (10 * 2 + 20 * 6) / 8]


def test_too_few_candles_give_nulls_not_errors():
    values = compute(parse_indicators("sma:20,macd,bbands"), candles_of([1.0, 2.0, 3.0]))
    assert all(v is None for column in values.values() for v in column)
    assert compute(parse_indicators("rsi"), []) == {"rsi_14": []}


@pytest.mark.django_db
class TestIndicatorsEndpoint:
    def test_rows_carry_each_indicator_exact_from_the_first_row_on(self, client, sandbox):
        body = client.get("/api/market/indicators", {"symbol": "BTC", "timeframe": "1h", "limit": 30,
                                                     "indicators": "sma:20,ema:50,rsi:14,macd,bbands:20:2,atr,vwap"})
        assert body.status_code == 200, body.content
        data = body.json()
        assert data["indicators"] == ["sma_20", "ema_50", "rsi_14", "macd_12_26_9", "bbands_20_2", "atr_14", "vwap"]
        rows = data["rows"]
        assert len(rows) == 30 and rows[-1]["closed"] is False and all(r["closed"] for r in rows[:-1])
        assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
        # The warm-up was fetched: even the first row has every value, and it is the value a far
        # longer history gives (the sandbox's candles are the same whenever asked for).
        reference = compute(parse_indicators("ema:50,rsi:14,macd"), simulated(2000))
        by_time = {c.open_time: i for i, c in enumerate(simulated(2000))}
        first = rows[0]
        assert all(first[key] is not None for key in data["indicators"])
        i = by_time[first["timestamp"]]
        assert abs(first["ema_50"] - reference["ema_50"][i]) < 1e-6 * first["ema_50"]
        assert abs(first["rsi_14"] - reference["rsi_14"][i]) < 1e-4
        assert abs(first["macd_12_26_9"]["macd"] - reference["macd_12_26_9"][i]["macd"]) < 1e-6 * first["ema_50"]

    def test_a_window_by_start_and_end_returns_exactly_those_candles(self, client, sandbox):
        now = align(int(time.time() * 1000), "1h")
        start, end = now - 10 * HOUR, now - 5 * HOUR
        rows = client.get("/api/market/indicators", {"symbol": "ETH", "timeframe": "1h", "start": start, "end": end,
                                                     "indicators": "sma:5"}).json()["rows"]
        assert [r["timestamp"] for r in rows] == list(range(start, end + 1, HOUR))
        assert rows[0]["sma_5"] is not None

    @pytest.mark.parametrize("indicators, words", [
        ("smaa:20", "Unknown indicator: 'smaa'"), ("rsi:0", "'rsi:0'"), ("macd:26:12", "fast period"),
        ("bbands:20:x", "band width"),
    ])
    def test_a_bad_name_or_parameter_is_a_400_naming_it(self, client, indicators, words):
        response = client.get("/api/market/indicators", {"symbol": "BTC", "indicators": indicators})
        assert response.status_code == 400 and words in response.json()["error"]

    def test_without_indicators_it_is_a_400(self, client):
        response = client.get("/api/market/indicators", {"symbol": "BTC"})
        assert response.status_code == 400 and "indicators" in response.json()["error"]

    def test_an_unknown_symbol_is_a_404(self, client, sandbox):
        response = client.get("/api/market/indicators", {"symbol": "NOPE", "indicators": "sma"})
        assert response.status_code == 404


def test_the_decimal_band_width_is_kept_in_the_key():
    assert parse_indicators("bbands:20:1.5")[0].params == (20, D("1.5"))

"""What a client may ask for in `indicators=`: pure parsing, errors that name the offending part."""

from decimal import Decimal as D

import pytest

from market.domain.errors import InvalidInput
from market.indicators.spec import Indicator, parse_indicators


def test_the_issues_example_parses_into_named_indicators():
    parsed = parse_indicators("sma:20,ema:50,rsi:14,macd:12:26:9,bbands:20:2,atr:14,vwap")
    assert [i.key for i in parsed] == ["sma_20", "ema_50", "rsi_14", "macd_12_26_9", "bbands_20_2", "atr_14", "vwap"]
    assert parsed[4] == Indicator("bbands", (20, D(2)))


def test_parameters_default_and_names_are_case_insensitive_and_duplicates_collapse():
    assert [i.key for i in parse_indicators("RSI, macd,sma:20,sma:20,bbands:10:2.5")] == [
        "rsi_14", "macd_12_26_9", "sma_20", "bbands_10_2.5"]


@pytest.mark.parametrize("raw, words", [
    ("smaa:20", "Unknown indicator: 'smaa'"),
    ("sma:abc", "'abc' is not a whole number"),
    ("sma:1", "between 2 and 500"),
    ("rsi:9999", "between 2 and 500"),
    ("macd:26:12:9", "fast period must be shorter"),
    ("macd:1:2:3:4", "takes 3 parameters"),
    ("vwap:5", "takes 0 parameters"),
    ("bbands:20:x", "band width 'x' is not a number"),
    ("bbands:20:50", "between 0.1 and 10"),
    ("bbands:20:nan", "between 0.1 and 10"),
    ("sma:20,,rsi", "an empty entry"),
    ("", "Missing required parameter: indicators"),
    (",".join(f"sma:{n}" for n in range(2, 14)), "at most 10"),
])
def test_a_bad_name_or_parameter_is_an_error_naming_it(raw, words):
    with pytest.raises(InvalidInput) as caught:
        parse_indicators(raw)
    assert words in str(caught.value)


def test_warm_up_covers_each_indicators_window_and_lets_smoothed_ones_converge():
    sma, ema, rsi, macd, vwap = parse_indicators("sma:20,ema:50,rsi:14,macd:12:26:9,vwap")
    assert sma.warmup == 19
    # An EMA keeps (1 - 2/(n+1))^k of a value k candles old: below a millionth after the warm-up.
    assert (1 - 2 / 51) ** ema.warmup < 1e-6
    assert (1 - 1 / 14) ** rsi.warmup < 1e-6  # Wilder's smoothing
    assert (1 - 2 / 27) ** (macd.warmup - 9) < 1e-6
    assert vwap.warmup == 0

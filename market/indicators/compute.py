"""The indicators computed with TA-Lib (the C library the field uses as its reference, from its
PyPI wheel), and VWAP, which TA-Lib lacks, anchored at each UTC day's start as trading platforms
show it. Values are floats; NaN (not enough candles yet) becomes None."""

from collections.abc import Sequence

import numpy as np
import talib

from ..domain.timeframes import TIMEFRAMES, align
from .spec import Indicator

DAY = TIMEFRAMES["1d"]


def _clean(values, first: int) -> list[float | None]:
    """From `first` on, as floats, None where there is no value (only the start, before enough candles)."""
    values = values[first:]
    out = values.tolist()
    missing = np.isnan(values)
    if missing.any():
        out = [None if m else v for v, m in zip(out, missing.tolist())]
    return out


def _series(indicator: Indicator, o, h, low, c, v, t, first: int) -> list:
    def _clean_(values):
        return _clean(values, first)

    name, p = indicator.name, indicator.params
    if name == "sma":
        return _clean_(talib.SMA(c, timeperiod=p[0]))
    if name == "ema":
        return _clean_(talib.EMA(c, timeperiod=p[0]))
    if name == "rsi":
        return _clean_(talib.RSI(c, timeperiod=p[0]))
    if name == "atr":
        return _clean_(talib.ATR(h, low, c, timeperiod=p[0]))
    if name == "macd":
        macd, signal, hist = (_clean_(x) for x in talib.MACD(c, fastperiod=p[0], slowperiod=p[1], signalperiod=p[2]))
        return [None if m is None or s is None else {"macd": m, "signal": s, "hist": hh}
                for m, s, hh in zip(macd, signal, hist)]
    if name == "bbands":
        upper, middle, lower = (_clean_(x) for x in talib.BBANDS(c, timeperiod=p[0], nbdevup=float(p[1]),
                                                                  nbdevdn=float(p[1]), matype=0))
        return [None if m is None else {"upper": u, "middle": m, "lower": lo} for u, m, lo in zip(upper, middle, lower)]
    if name == "vwap":
        return vwap(h, low, c, v, t)[first:]
    raise ValueError(name)


def vwap(h, low, c, v, t) -> list[float | None]:
    """Volume-weighted average of the typical price (high + low + close) / 3, from the start of
    each UTC day (a candle of a day or longer is its own session)."""
    typical = (h + low + c) / 3
    out: list[float | None] = []
    day, pv, vol = None, 0.0, 0.0
    for i in range(len(c)):
        start = align(int(t[i]), "1d")
        if start != day:
            day, pv, vol = start, 0.0, 0.0
        pv += float(typical[i] * v[i])
        vol += float(v[i])
        out.append(pv / vol if vol > 0 else None)
    return out


def compute(indicators: Sequence[Indicator], candles: Sequence, first: int = 0) -> dict[str, list]:
    """{indicator key: one value per candle from candles[first] on}, candles oldest first
    (StoredCandle: floats); the ones before `first` are the warm-up."""
    columns = np.array([(c.open, c.high, c.low, c.close, c.volume, c.open_time) for c in candles], dtype=np.float64)
    if not len(columns):
        return {i.key: [] for i in indicators}
    o, h, low, c, v, t = (np.ascontiguousarray(columns[:, k]) for k in range(6))
    return {i.key: _series(i, o, h, low, c, v, t, first) for i in indicators}

"""Indicator values for a candles request: the stored candles of the window plus the warm-up
before it (fetched from the exchange and stored first when missing, as for `/api/market/ohlc`),
the indicators computed over all of them, the window's rows returned."""

from ..candles import candles_for_request
from ..domain.timeframes import TIMEFRAMES
from ..selectors import now_ms
from .compute import compute
from .spec import Indicator

DAY = TIMEFRAMES["1d"]


def warmup(indicators: list[Indicator], timeframe: str) -> int:
    """Candles needed before the first returned one."""
    size = TIMEFRAMES[timeframe]
    need = max((i.warmup for i in indicators), default=0)
    if any(i.name == "vwap" for i in indicators) and size < DAY:
        need = max(need, DAY // size - 1)  # the day's earlier candles of the first returned one
    return need


def indicator_rows(q: dict, indicators: list[Indicator], now: int) -> list[dict]:
    size = TIMEFRAMES[q["timeframe"]]
    extra = warmup(indicators, q["timeframe"])
    start = None if q["start"] is None else max(0, q["start"] - extra * size)
    candles = candles_for_request(q["source"], q["symbol"], q["timeframe"], q["limit"] + extra, start, q["end"], now)
    first = 0 if q["start"] is None else next((i for i, c in enumerate(candles) if c.open_time >= q["start"]), len(candles))
    first = max(first, len(candles) - q["limit"], 0)
    columns = list(compute(indicators, candles, first).items())
    rows = []
    for offset, candle in enumerate(candles[first:]):
        row = {"timestamp": candle.open_time, "closed": bool(candle.closed)}
        for key, column in columns:
            row[key] = column[offset]
        rows.append(row)
    return rows


def latest_values(source: str, symbol: str, timeframe: str, open_time: int, indicators: list[Indicator]) -> dict:
    """The indicators' values for one candle (a candle update on the WebSocket)."""
    q = {"source": source, "symbol": symbol, "timeframe": timeframe, "limit": 1, "start": None, "end": open_time}
    rows = indicator_rows(q, indicators, now_ms())
    row = rows[-1] if rows and rows[-1]["timestamp"] == open_time else {}
    return {i.key: row.get(i.key) for i in indicators}

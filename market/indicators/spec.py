"""What a client asks for: `sma:20,ema:50,rsi:14,macd:12:26:9,bbands:20:2,atr:14,vwap`. Pure Python.

Each indicator has a name, parameters with bounds, and a warm-up: how many candles before the
first returned one it needs so that the first value is as exact as the last. Averages over a
window need the window; the smoothed ones (EMA, Wilder's RSI and ATR, MACD) carry every earlier
candle with a weight that halves every so often, so they get enough history for the first
candle's weight to fall below a part in a million of the value (TA-Lib's "unstable period")."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

from ..domain.errors import InvalidInput

MAX_INDICATORS = 10
MAX_PERIOD = 500


@dataclass(frozen=True)
class Indicator:
    name: str
    params: tuple  # ints, and the band width (a Decimal) for bbands

    @cached_property
    def key(self) -> str:
        """The indicator's name in the answer: sma_20, macd_12_26_9, bbands_20_2, vwap."""
        return "_".join([self.name, *(_text(p) for p in self.params)])

    @property
    def warmup(self) -> int:
        p = self.params
        if self.name in ("sma", "bbands"):
            return p[0] - 1
        if self.name == "ema":
            return _smoothed(p[0])
        if self.name in ("rsi", "atr"):
            return _smoothed(2 * p[0])  # Wilder's smoothing: alpha 1/n, as an EMA of 2n - 1
        if self.name == "macd":
            return _smoothed(p[1]) + p[2]
        return 0  # vwap: from the start of the candle's UTC day, fetched whole (see selectors)


def _smoothed(period: int) -> int:
    # An EMA with alpha 2/(n+1) keeps (1-alpha)^k of a value k candles old: below 1e-6 after
    # about 7n candles for large n; never less than the seed window itself.
    return max(period, int(7 * period)) + 1


def _text(value) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


# name -> (parameter count, defaults) and per-parameter rule
SIGNATURES: dict[str, tuple[int, tuple]] = {
    "sma": (1, (20,)),
    "ema": (1, (20,)),
    "rsi": (1, (14,)),
    "atr": (1, (14,)),
    "macd": (3, (12, 26, 9)),
    "bbands": (2, (20, Decimal(2))),
    "vwap": (0, ()),
}


def _int(raw: str, part: str, lo: int, hi: int) -> int:
    try:
        value = int(raw, 10)
    except ValueError:
        raise InvalidInput(f"Invalid indicator {part}: {raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"Invalid indicator {part}: {value} must be between {lo} and {hi}")
    return value


def parse_one(text: str) -> Indicator:
    name, *raw = text.strip().lower().split(":")
    if name not in SIGNATURES:
        raise InvalidInput(f"Unknown indicator: {name or text!r}. Must be one of: {', '.join(SIGNATURES)}")
    count, defaults = SIGNATURES[name]
    if len(raw) > count:
        raise InvalidInput(f"Invalid indicator {text!r}: {name} takes {count} parameter{'s' if count != 1 else ''}")
    raw = raw + [None] * (count - len(raw))
    params = []
    for i, (value, default) in enumerate(zip(raw, defaults)):
        if value in (None, ""):
            params.append(default)
        elif name == "bbands" and i == 1:
            try:
                width = Decimal(value)
            except InvalidOperation:
                raise InvalidInput(f"Invalid indicator {text!r}: the band width {value!r} is not a number") from None
            if not width.is_finite() or not Decimal("0.1") <= width <= 10:
                raise InvalidInput(f"Invalid indicator {text!r}: the band width must be between 0.1 and 10")
            params.append(width)
        else:
            params.append(_int(value, f"{text!r}", 2 if name != "macd" or i < 2 else 1, MAX_PERIOD))
    if name == "macd" and params[0] >= params[1]:
        raise InvalidInput(f"Invalid indicator {text!r}: the fast period must be shorter than the slow one")
    return Indicator(name, tuple(params))


def parse_indicators(raw: object) -> list[Indicator]:
    """Parse a comma-separated list; a bad name or parameter is an InvalidInput naming it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidInput("Missing required parameter: indicators (e.g. sma:20,rsi:14)")
    if not isinstance(raw, str) or len(raw) > 500:
        raise InvalidInput("Invalid indicators: a comma-separated list such as sma:20,rsi:14")
    out: list[Indicator] = []
    for part in raw.split(","):
        if not part.strip():
            raise InvalidInput(f"Invalid indicators: an empty entry in {raw!r}")
        indicator = parse_one(part)
        if indicator not in out:
            out.append(indicator)
    if len(out) > MAX_INDICATORS:
        raise InvalidInput(f"Too many indicators: at most {MAX_INDICATORS}")
    return out

"""A simulated market for the sandbox exchange. Pure Python, deterministic.

Candles are generated top-down: a week's candle first (its open is a slow function of time,
its close the next week's open), then each candle is split into children whose aggregate is
exactly the parent: 1w -> 7 x 1d -> 6 x 4h -> 4 x 1h -> 2 x 30m -> 2 x 15m -> 3 x 5m ->
5 x 1m. Every timeframe is therefore consistent with every other, history exists for any
time, and a restart of the sandbox serves the very same candles (no gaps).

The candle containing "now" is revealed only up to now: the price inside a minute follows a
path open -> extreme -> extreme -> close, and higher timeframes aggregate what is revealed.
"""

import hashlib
import math
import random
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from market.domain.candles import Candle, aggregate
from market.domain.symbols import normalize_symbol
from market.domain.timeframes import TIMEFRAMES, align

# Parent timeframe -> (child timeframe, number of children)
CHILDREN = {"1w": ("1d", 7), "1d": ("4h", 6), "4h": ("1h", 4), "1h": ("30m", 2), "30m": ("15m", 2),
            "15m": ("5m", 3), "5m": ("1m", 5)}
PARENT = {child: parent for parent, (child, _) in CHILDREN.items()}

BASE_PRICES = {
    "BTC": 60000, "ETH": 3000, "SOL": 150, "ADA": 0.45, "DOGE": 0.12, "XRP": 0.6, "DOT": 6.5, "LTC": 80,
    "LINK": 15, "AVAX": 30, "MATIC": 0.7, "ATOM": 8, "UNI": 9, "XLM": 0.11, "BCH": 350, "ETC": 25,
    "FIL": 5, "APT": 8, "ARB": 1.1, "OP": 2.2, "NEAR": 5, "ALGO": 0.18, "AAVE": 95, "MKR": 2500,
    "SHIB": 0.000022, "PEPE": 0.0000095, "TRX": 0.12, "ICP": 11, "HBAR": 0.08, "VET": 0.03,
    "SAND": 0.45, "MANA": 0.42, "AXS": 7, "GRT": 0.25, "CRV": 0.5, "COMP": 55, "SNX": 3, "SUSHI": 1.1,
    "YFI": 7000, "BAT": 0.25, "ZEC": 25, "DASH": 30, "XTZ": 0.95, "EOS": 0.75, "KSM": 30, "INJ": 25,
    "RNDR": 7, "FET": 1.5, "IMX": 2, "LDO": 2, "STX": 2, "SEI": 0.5, "SUI": 1.2, "TIA": 9, "RUNE": 5,
    "EGLD": 40, "FLOW": 0.9, "CHZ": 0.1, "ENS": 15, "1INCH": 0.4,
}
SYMBOLS = tuple(BASE_PRICES)  # what the sandbox lists unless told otherwise (the demo, the tests)
WEEK = TIMEFRAMES["1w"]
# Beyond SYMBOLS, for capacity runs (sandbox_exchange --symbols N): generated base assets, the same
# on every run, up to this many symbols in all.
MAX_SYMBOLS = 1000


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _generated_prices(count: int) -> dict[str, float]:
    """`count` made-up base assets (3-4 letters, none a listed one, none that a pair notation would
    read as another: no quote suffix, no Kraken alias) with base prices of two significant digits,
    log-uniform from 0.001 to 1,000, as a long tail of altcoins has."""
    rng = _rng("generated symbols")
    out: dict[str, float] = {}
    while len(out) < count:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.choice((3, 4))))
        if name in BASE_PRICES or name in out or normalize_symbol(name) != name or normalize_symbol(name + "USDT") != name:
            continue
        out[name] = float(f"{10 ** rng.uniform(-3, 3):.2g}")
    return out


GENERATED_PRICES = _generated_prices(MAX_SYMBOLS - len(BASE_PRICES))
ALL_SYMBOLS = SYMBOLS + tuple(GENERATED_PRICES)


def symbols(count: int | None = None) -> tuple[str, ...]:
    """The first `count` symbols: SYMBOLS, then generated ones (None: SYMBOLS, as the demo lists)."""
    if count is None:
        return SYMBOLS
    if not 1 <= count <= MAX_SYMBOLS:
        raise ValueError(f"the sandbox lists 1 to {MAX_SYMBOLS} symbols, not {count}")
    return ALL_SYMBOLS[:count]


def base_price(symbol: str) -> float:
    return BASE_PRICES[symbol] if symbol in BASE_PRICES else GENERATED_PRICES[symbol]


def tick_size(symbol: str) -> Decimal:
    base = base_price(symbol)
    if base >= 1000:
        return Decimal("0.01")
    if base >= 1:
        return Decimal("0.0001")
    digits = max(6, 4 - int(math.floor(math.log10(base))))
    return Decimal(1).scaleb(-digits)


def _q(value: float | Decimal, symbol: str) -> Decimal:
    return Decimal(str(value)).quantize(tick_size(symbol), rounding=ROUND_HALF_EVEN)


def _week_open(symbol: str, week_start: int) -> Decimal:
    """The price at the start of a week: slow cycles plus weekly noise, in log space."""
    w = week_start / WEEK
    rng = _rng(symbol, "week", week_start)
    phase = _rng(symbol, "phase").random() * 2 * math.pi
    log_move = 0.35 * math.sin(2 * math.pi * w / 52 + phase) + 0.15 * math.sin(2 * math.pi * w / 9 + phase * 2)
    log_move += 0.04 * (rng.random() - 0.5)
    return _q(base_price(symbol) * math.exp(log_move), symbol)


@lru_cache(maxsize=20_000)
def _week(symbol: str, week_start: int) -> Candle:
    rng = _rng(symbol, "range", week_start)
    o = _week_open(symbol, week_start)
    c = _week_open(symbol, week_start + WEEK)
    top, bottom = max(o, c), min(o, c)
    h = _q(float(top) * (1 + 0.01 + 0.05 * rng.random()), symbol)
    low = _q(float(bottom) * (1 - 0.01 - 0.05 * rng.random()), symbol)
    volume = Decimal(str(round(rng.uniform(0.5, 1.5) * 2_000_000 / max(base_price(symbol), 1e-6) ** 0.5, 4)))
    return Candle(week_start, o, h, max(low, tick_size(symbol)), c, volume.quantize(Decimal("0.00000001")))


@lru_cache(maxsize=200_000)
def children(symbol: str, timeframe: str, open_time: int) -> tuple[Candle, ...]:
    """The child candles of a (complete) candle, aggregating exactly to it."""
    parent = candle(symbol, timeframe, open_time)
    child_tf, n = CHILDREN[timeframe]
    size = TIMEFRAMES[child_tf]
    rng = _rng(symbol, timeframe, open_time)
    o, h, low, c = (float(parent.open), float(parent.high), float(parent.low), float(parent.close))
    spread = h - low
    points = [parent.open]
    for i in range(1, n):
        mid = o + (c - o) * i / n + rng.gauss(0, 0.3) * spread
        points.append(min(parent.high, max(parent.low, _q(mid, symbol))))
    points.append(parent.close)
    i_high = rng.randrange(n)
    i_low = rng.randrange(n - 1)
    if i_low >= i_high:
        i_low += 1
    weights = [rng.random() + 0.2 for _ in range(n)]
    total_w = sum(weights)
    volumes = [(parent.volume * Decimal(w / total_w)).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
               for w in weights[:-1]]
    volumes.append(parent.volume - sum(volumes, Decimal(0)))
    out = []
    for i in range(n):
        a, b = points[i], points[i + 1]
        top, bottom = max(a, b), min(a, b)
        hi = parent.high if i == i_high else min(parent.high, max(top, _q(float(top) + rng.random() * float(parent.high - top) * 0.5, symbol)))
        lo = parent.low if i == i_low else max(parent.low, min(bottom, _q(float(bottom) - rng.random() * float(bottom - parent.low) * 0.5, symbol)))
        out.append(Candle(open_time + i * size, a, hi, lo, b, volumes[i]))
    return tuple(out)


def candle(symbol: str, timeframe: str, open_time: int) -> Candle:
    """The complete candle of `timeframe` opening at `open_time` (which must be aligned)."""
    if timeframe == "1w":
        return _week(symbol, open_time)
    parent_tf = PARENT[timeframe]
    parent_open = align(open_time, parent_tf)
    index = (open_time - parent_open) // TIMEFRAMES[timeframe]
    return children(symbol, parent_tf, parent_open)[index]


def _minute_path(symbol: str, full: Candle) -> list[tuple[float, Decimal]]:
    rng = _rng(symbol, "path", full.open_time)
    f1, f2 = 0.2 + 0.25 * rng.random(), 0.55 + 0.25 * rng.random()
    first, second = (full.high, full.low) if rng.random() < 0.5 else (full.low, full.high)
    return [(0.0, full.open), (f1, first), (f2, second), (1.0, full.close)]


def _partial_minute(symbol: str, open_time: int, now_ms: int) -> Candle:
    full = candle(symbol, "1m", open_time)
    frac = min(1.0, max(0.0, (now_ms - open_time) / TIMEFRAMES["1m"]))
    path = _minute_path(symbol, full)
    seen = [v for f, v in path if f <= frac]
    for (f0, v0), (f1, v1) in zip(path, path[1:]):
        if f0 <= frac <= f1:
            span = (f1 - f0) or 1.0
            current = _q(float(v0) + (float(v1) - float(v0)) * (frac - f0) / span, symbol)
            break
    seen.append(current)
    volume = (full.volume * Decimal(frac)).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
    return Candle(open_time, full.open, max(seen), min(seen), current, volume, closed=False)


def revealed(symbol: str, timeframe: str, open_time: int, now_ms: int) -> Candle:
    """The candle as known at `now_ms`: complete if its period has ended, else partial."""
    size = TIMEFRAMES[timeframe]
    if open_time + size <= now_ms:
        return candle(symbol, timeframe, open_time)
    if timeframe == "1m":
        return _partial_minute(symbol, open_time, now_ms)
    child_tf, _ = CHILDREN[timeframe]
    parts = [
        revealed(symbol, child_tf, c.open_time, now_ms)
        for c in children(symbol, timeframe, open_time)
        if c.open_time <= now_ms
    ]
    return aggregate(parts, timeframe, now_ms)[0]


def price(symbol: str, now_ms: int) -> Decimal:
    return _partial_minute(symbol, align(now_ms, "1m"), now_ms).close


def series(symbol: str, timeframe: str, first: int, last: int, now_ms: int) -> list[Candle]:
    """Candles with open time in [first, last], never beyond now."""
    size = TIMEFRAMES[timeframe]
    start = align(first, timeframe)
    if start < first:
        start += size
    end = min(align(last, timeframe), align(now_ms, timeframe))
    return [revealed(symbol, timeframe, t, now_ms) for t in range(start, end + 1, size)]


def digits(value: Decimal) -> str:
    """A number as the exchanges that print strings print it: every digit, no exponent, no trailing
    zeros (60000, 0.000022, 48243.66)."""
    return format(value.normalize(), "f")

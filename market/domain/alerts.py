"""Price alerts: a condition on one market's stored prices, checked price by price.

Pure Python. An alert is `above` or `below` a level (met by a price at or past it), or a
`change_pct` move over a `window` (met by a move of at least that many percent either way
between the stored price at the tick's time minus the window and the tick's price). It fires
once, on the first price after it was set that meets it; a `repeat` alert is armed again by a
price that no longer meets it, and fires again at the next one that does.
"""

import re
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidInput
from .params import parse_number
from .prices import move_pct

CONDITIONS = ("above", "below", "change_pct")
WINDOW_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_WINDOW_MS = WINDOW_UNITS["d"]
MAX_LEVEL = 1e12
MAX_CHANGE_PCT = 1000.0
_WINDOW = re.compile(r"(\d{1,5})([mhd])")


def parse_window(raw: object) -> str:
    """A window such as "15m", "1h", "1d": from one minute to one day."""
    match = _WINDOW.fullmatch(raw) if isinstance(raw, str) else None
    if match is None or not 0 < int(match[1]) * WINDOW_UNITS[match[2]] <= MAX_WINDOW_MS:
        raise InvalidInput(f"Invalid window: {raw!s:.20}. Must be minutes, hours or days (e.g. 15m, 1h, 1d), from 1m to 1d")
    return raw


def window_ms(window: str) -> int:
    return int(window[:-1]) * WINDOW_UNITS[window[-1]]


@dataclass(frozen=True)
class AlertSpec:
    source: str
    symbol: str
    condition: str  # one of CONDITIONS
    threshold: float
    window: str | None = None  # change_pct only
    repeat: bool = False

    @property
    def market(self) -> tuple[str, str]:
        return (self.source, self.symbol)

    def describe(self) -> dict:
        """The alert as the client set it (the same fields)."""
        out = {"symbol": self.symbol, "source": self.source, self.condition: self.threshold}
        if self.window:
            out["window"] = self.window
        out["repeat"] = self.repeat
        return out


def parse_alert(data: dict, source: str, symbol: str) -> AlertSpec:
    """An alert's condition from a message: exactly one of above, below, change_pct (with a window)."""
    named = [c for c in CONDITIONS if data.get(c) is not None]
    if len(named) != 1:
        raise InvalidInput("An alert needs exactly one condition: above, below or change_pct")
    condition = named[0]
    if condition == "change_pct":
        threshold = parse_number(data["change_pct"], "change_pct", 0, MAX_CHANGE_PCT, above_lo=True)
        if data.get("window") is None:
            raise InvalidInput('change_pct needs a window, e.g. "window": "1h"')
        window = parse_window(data["window"])
    else:
        threshold = parse_number(data[condition], condition, 0, MAX_LEVEL, above_lo=True)
        if data.get("window") is not None:
            raise InvalidInput("window goes with change_pct")
        window = None
    repeat = data.get("repeat", False)
    if not isinstance(repeat, bool):
        raise InvalidInput("Invalid repeat: must be true or false")
    return AlertSpec(source, symbol, condition, threshold, window, repeat)


def level_met(condition: str, threshold: float, price: float) -> bool:
    """`above` is met by a price at or above its level, `below` by one at or below it."""
    return price >= threshold if condition == "above" else price <= threshold


def change_met(threshold: float, change: float | None) -> bool:
    """`change_pct` is met by a move of at least `threshold` percent either way."""
    return change is not None and abs(change) >= threshold


class ThresholdBook:
    """Many alerts of one condition on one market, by threshold: which of them a value meets (and
    which it does not) found by bisection, not by checking each. The value is the price for
    `above`/`below`, and the size of the move (abs of the percent change) for `change_pct`, whose
    alerts are met like `above` ones. The same rule as level_met and change_met, in sorted form."""

    def __init__(self, condition: str, entries: Iterable[tuple[float, object]] = ()):
        self.condition = "below" if condition == "below" else "above"
        pairs = sorted(entries, key=lambda e: e[0])
        self.thresholds = [t for t, _ in pairs]
        self.ids = [i for _, i in pairs]

    def __len__(self) -> int:
        return len(self.ids)

    def _cut(self, value: float) -> int:
        # above: thresholds[:cut] are <= value (met); below: thresholds[cut:] are >= value (met).
        return bisect_right(self.thresholds, value) if self.condition == "above" else bisect_left(self.thresholds, value)

    def met(self, value: float) -> list:
        cut = self._cut(value)
        return self.ids[:cut] if self.condition == "above" else self.ids[cut:]

    def unmet(self, value: float) -> list:
        cut = self._cut(value)
        return self.ids[cut:] if self.condition == "above" else self.ids[:cut]

    def add(self, threshold: float, alert_id: object) -> None:
        at = bisect_right(self.thresholds, threshold)
        self.thresholds.insert(at, threshold)
        self.ids.insert(at, alert_id)

    def discard(self, threshold: float, alert_id: object) -> None:
        at = bisect_left(self.thresholds, threshold)
        while at < len(self.ids) and self.thresholds[at] == threshold:
            if self.ids[at] == alert_id:
                del self.thresholds[at], self.ids[at]
                return
            at += 1


class PriceWindow:
    """A market's stored prices over the last `span_ms`, enough to know the price at any tick's
    time minus the span, in bounded memory: prices closer than span/points to the previous one
    kept are skipped, so the reference found is at most span/points older than the exact one."""

    def __init__(self, span_ms: int, points: int = 120):
        self.span = span_ms
        self.step = max(1, span_ms // points)
        self.samples: deque[tuple[int, float]] = deque()
        self.newest = -1

    def add(self, ts: int, price: float) -> None:
        if ts <= self.newest:
            return  # a price already seen, or an older one arriving late
        self.newest = ts
        if not self.samples or ts - self.samples[-1][0] >= self.step:
            self.samples.append((ts, price))
        cutoff = ts - self.span
        while len(self.samples) > 1 and self.samples[1][0] <= cutoff:
            self.samples.popleft()  # keep one price at or before the cutoff: the reference

    def reference(self, ts: int) -> tuple[int, float] | None:
        """The newest kept price at or before ts minus the span (None: not that much history yet)."""
        if self.samples and self.samples[0][0] <= ts - self.span:
            best = self.samples[0]
            for sample in self.samples:
                if sample[0] > ts - self.span:
                    break
                best = sample
            return best
        return None


class Alert:
    """One alert's state: checks each new price once, in time order."""

    def __init__(self, alert_id: str, spec: AlertSpec, since_ms: int = -1, history: Iterable[tuple[int, float]] = ()):
        self.id = alert_id
        self.spec = spec
        self.window = PriceWindow(window_ms(spec.window)) if spec.window else None
        self.last = since_ms  # prices at or before this were stored before the alert was set
        for ts, price in history:
            self.window.add(ts, price)
            self.last = max(self.last, ts)
        self.armed = True
        self.done = False

    def check(self, ts: int, price: float) -> dict | None:
        """The alert's message fields if this price fires it, else None."""
        if self.done or ts <= self.last:
            return None
        self.last = ts
        fields = {"price": price, "timestamp": ts}
        if self.window is None:
            met = level_met(self.spec.condition, self.spec.threshold, price)
        else:
            self.window.add(ts, price)
            ref = self.window.reference(ts)
            change = None if ref is None else move_pct(ref[1], price)
            met = change_met(self.spec.threshold, change)
            if met:
                fields.update(change=change, reference_price=ref[1], reference_timestamp=ref[0])
        if not met:
            self.armed = self.armed or self.spec.repeat
            return None
        if not self.armed:
            return None
        self.armed = False
        self.done = not self.spec.repeat
        return fields

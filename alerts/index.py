"""One market's alerts as this process knows them, by condition and threshold: which ones a new
price fires, and which repeat alerts it arms again, found by bisection (ThresholdBook), never by
checking each alert. Pure Python: the rows and price history are given to it (alerts.services
loads them, and keeps one MarketIndex per market while the market's alerts version is the same).

The database stays the truth: an alert this index believes armed fires only if the atomic UPDATE
in alerts.services still finds it armed, so a stale index can ask for a fire that another process
already made, never make it twice.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from market.domain.alerts import PriceWindow, ThresholdBook, window_ms
from market.domain.prices import move_pct


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    condition: str
    threshold: float
    window: str  # "" unless change_pct
    repeat: bool
    armed: bool
    since_ms: int  # it fires only on a price newer than this (set before it was created, or its cooldown)


@dataclass(slots=True)
class Outcome:
    fire: list[int]  # armed alerts this price meets
    rearm: list[int]  # disarmed repeat alerts this price no longer meets
    fields: dict[int, dict]  # per fired alert, what the change_pct ones add (the move and its reference)


def _book_key(row: Row) -> tuple[str, int]:
    return (row.condition, window_ms(row.window) if row.window else 0)


class MarketIndex:
    def __init__(self, rows: Iterable[Row], version: object = None):
        self.version = version
        self.built = 0.0  # time.monotonic() of its load (the loader sets it)
        self.rows: dict[int, Row] = {}
        self.armed: dict[tuple[str, int], ThresholdBook] = {}
        self.rearming: dict[tuple[str, int], ThresholdBook] = {}
        self.newest = -1  # the newest price this index has checked
        for row in rows:
            self.put(row)

    def put(self, row: Row) -> None:
        """Add an alert (armed, or a repeat one waiting to be armed again); a fired one-shot is left out."""
        self.drop(row.id)
        if not row.armed and not row.repeat:
            return
        books = self.armed if row.armed else self.rearming
        key = _book_key(row)
        books.setdefault(key, ThresholdBook(row.condition)).add(row.threshold, row.id)
        self.rows[row.id] = row

    def drop(self, alert_id: int) -> None:
        row = self.rows.pop(alert_id, None)
        if row is not None:
            (self.armed if row.armed else self.rearming)[_book_key(row)].discard(row.threshold, alert_id)

    def fired(self, alert_id: int, since_ms: int | None = None) -> None:
        """Disarmed by a fire; `since_ms`: it fires again only on a price newer than this (its cooldown)."""
        row = self.rows.get(alert_id)
        if row is not None:
            self.put(Row(row.id, row.condition, row.threshold, row.window, row.repeat, False,
                         row.since_ms if since_ms is None else since_ms))

    def rearmed(self, alert_id: int) -> None:
        row = self.rows.get(alert_id)
        if row is not None:
            self.put(Row(row.id, row.condition, row.threshold, row.window, row.repeat, True, row.since_ms))

    def windows(self) -> set[int]:
        """The change_pct windows (ms) this market's alerts use."""
        return {w for (condition, w), book in [*self.armed.items(), *self.rearming.items()] if w and len(book)}

    def check(self, ts: int, price: float, reference: Callable[[int], tuple[int, float] | None]) -> Outcome:
        """What one stored price does to this market's alerts (prices are checked once, in time
        order: an older or already checked one does nothing). `reference(window_ms)` is the stored
        price at ts minus the window (None: not that much history)."""
        out = Outcome([], [], {})
        if ts <= self.newest:
            return out
        self.newest = ts
        for key in {*self.armed, *self.rearming}:
            condition, window = key
            armed, rearming = self.armed.get(key), self.rearming.get(key)
            if window:
                ref = reference(window)
                change = None if ref is None else move_pct(ref[1], price)
                if change is None:  # not met: a repeat alert is armed again, none fires
                    out.rearm.extend(rearming.ids if rearming else ())
                    continue
                value = abs(change)
            else:
                value = price
            if armed:
                for alert_id in armed.met(value):
                    if self.rows[alert_id].since_ms < ts:
                        out.fire.append(alert_id)
                        if window:
                            out.fields[alert_id] = {"change": change, "reference_price": ref[1], "reference_timestamp": ref[0]}
            if rearming:
                out.rearm.extend(rearming.unmet(value))
        return out


class Windows:
    """A market's recent prices per change_pct window (market.domain.alerts.PriceWindow), kept
    across index rebuilds: `load(since_ms)` gives the stored prices from the newest at or before
    since_ms onwards, read when a window is new or this process missed prices (another process
    stored them) for longer than the window's sampling step."""

    def __init__(self, load: Callable[[int], Iterable[tuple[int, float]]]):
        self.load = load
        self.by_span: dict[int, PriceWindow] = {}

    def reference(self, span: int, ts: int, price: float) -> tuple[int, float] | None:
        window = self.by_span.get(span)
        if window is None:
            window = self.by_span[span] = PriceWindow(span)
            for point in self.load(ts - span):
                window.add(*point)
        elif ts - window.newest > window.step:
            for point in self.load(window.newest):
                window.add(*point)
        window.add(ts, price)
        return window.reference(ts)

"""A connection's live alerts: set over /ws, checked on every price the connection receives for
their markets, gone with the connection. The rules are market.domain.alerts'."""

from market import markets, selectors
from market.domain.alerts import Alert, AlertSpec, window_ms


def start_alert(alert_id: str, spec: AlertSpec) -> Alert:
    """An alert on a listed market (404 otherwise), kept polled, that checks the prices stored
    after its newest one; a change_pct alert starts from the window's stored prices."""
    _tracked, tick = markets.watch(spec.source, spec.symbol)
    history = selectors.price_points(spec.source, spec.symbol, selectors.now_ms() - window_ms(spec.window)) if spec.window else ()
    return Alert(alert_id, spec, tick.timestamp_ms if tick else -1, history)


class LiveAlerts:
    """One connection's alerts by id (ids are never reused on a connection)."""

    def __init__(self):
        self.by_id: dict[str, Alert] = {}
        self.set_count = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def next_id(self) -> str:
        self.set_count += 1
        return f"a{self.set_count}"

    def add(self, alert: Alert) -> None:
        self.by_id[alert.id] = alert

    def remove(self, alert_id: str) -> Alert | None:
        return self.by_id.pop(alert_id, None)

    def on(self, market: tuple[str, str]) -> bool:
        return any(a.spec.market == market for a in self.by_id.values())

    def markets(self) -> set[tuple[str, str]]:
        return {a.spec.market for a in self.by_id.values()}

    def describe(self) -> list[dict]:
        return [{"id": a.id, **a.spec.describe()} for a in self.by_id.values()]

    def check(self, market: tuple[str, str], ts: int, price: float) -> tuple[list[dict], int]:
        """A market's price against its alerts: the `alert` messages of those it fires, in order,
        and how many are done (and dropped: fired once, not repeating)."""
        fired_messages, done = [], 0
        for alert in [a for a in self.by_id.values() if a.spec.market == market]:
            fired = alert.check(ts, price)
            if fired is not None:
                fired_messages.append({"type": "alert", "id": alert.id, **alert.spec.describe(), **fired})
            if alert.done:
                del self.by_id[alert.id]
                done += 1
        return fired_messages, done

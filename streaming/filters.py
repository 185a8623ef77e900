"""A price subscription's filters: which stored prices it is sent. Pure Python.

`min_interval` (seconds) and `min_change_pct` compare a price with the last one *sent* to the
subscriber, by the ticks' own timestamps (not the clock: the same prices give the same answer
however late they are delivered). A price held back is dropped, not sent later.
"""

from market.domain.prices import move_pct

MAX_INTERVAL_SECONDS = 86_400.0
MAX_CHANGE_PCT = 100.0


class PriceFilter:
    def __init__(self, min_interval: float, min_change_pct: float, last: tuple[int, float] | None = None):
        self.interval_ms = min_interval * 1000
        self.min_change_pct = min_change_pct
        self.last = last  # (timestamp, price) of the last price sent

    def admits(self, ts: int, price: float) -> bool:
        if self.last is None:
            return True
        last_ts, last_price = self.last
        if ts - last_ts < self.interval_ms:
            return False
        if self.min_change_pct:
            moved = move_pct(last_price, price)
            return moved is None or abs(moved) >= self.min_change_pct
        return True

    def sent(self, ts: int, price: float) -> None:
        self.last = (ts, price)

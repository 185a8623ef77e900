"""What an exchange's live feed delivers, and the rules for taking it in. Pure Python.

A feed message becomes events (a trade, a candle, an acknowledgement, a rejection, a sign of
life). The ingest process keeps per market the newest trade it stored and at most one stored tick
per `TICK_MIN_INTERVAL` (`Throttle`), notices missed messages by their trade ids (`Sequences`),
reconnects after a randomised, growing delay (`reconnect_delay`), and tells every process whether
an exchange's feed is the live path (`feed_is_live`), so the REST poller stands in while it is not.
"""

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

from .candles import Candle


@dataclass(frozen=True, slots=True)
class Trade:
    """A trade (or the price it set) on one market: the exchange's price, time and trade id."""

    symbol: str
    price: Decimal
    timestamp_ms: int
    seq: int | None = None  # a trade id that grows by one per trade on this market, when the feed has one


@dataclass(frozen=True, slots=True)
class CandleUpdate:
    """The exchange's own candle for one market and timeframe, as it stands now."""

    symbol: str
    timeframe: str
    candle: Candle


@dataclass(frozen=True, slots=True)
class Ack:
    """The exchange accepted a subscription (or answered a probe)."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The exchange refused a request (an unknown market, a malformed subscription, a limit)."""

    detail: str


@dataclass(frozen=True, slots=True)
class Alive:
    """A heartbeat, a pong or a status message: the connection works, nothing to store."""


Event = Trade | CandleUpdate | Ack | Rejected | Alive

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Throttle(Generic[K, V]):
    """At most one value per key per `interval_ms`, and always the newest.

    The first value after a quiet interval goes out at once (no added latency); values that
    arrive sooner wait, each replacing the one before, and the newest goes out when the interval
    has passed (`due`). `force` sends a value at once regardless (a candle that just closed)."""

    interval_ms: int
    _sent_at: dict = field(default_factory=dict)
    _pending: dict = field(default_factory=dict)

    def offer(self, key: K, value: V, now_ms: int, force: bool = False) -> V | None:
        if force or (key not in self._pending and now_ms - self._sent_at.get(key, -(10**15)) >= self.interval_ms):
            self._pending.pop(key, None)
            self._sent_at[key] = now_ms
            return value
        self._pending[key] = value
        return None

    def due(self, now_ms: int) -> list[V]:
        out = []
        for key in [k for k in self._pending if now_ms - self._sent_at.get(k, 0) >= self.interval_ms]:
            out.append(self._pending.pop(key))
            self._sent_at[key] = now_ms
        return out

    def next_due_ms(self) -> int | None:
        """When the earliest held value may go out."""
        if not self._pending:
            return None
        return min(self._sent_at.get(k, 0) for k in self._pending) + self.interval_ms

    def held(self, key: K) -> V | None:
        """The value waiting for its interval to end, if any."""
        return self._pending.get(key)

    def take(self, key: K) -> V | None:
        """The value held for a key, no longer held (the caller sends it)."""
        return self._pending.pop(key, None)

    def forget(self, key: K) -> None:
        self._pending.pop(key, None)
        self._sent_at.pop(key, None)


@dataclass
class Sequences:
    """The last trade id seen per market. `check` says whether a trade is new, and whether trades
    were missed before it (a gap: the caller resyncs that market from the REST API)."""

    _last: dict = field(default_factory=dict)

    def check(self, symbol: str, seq: int | None) -> tuple[bool, bool]:
        """(is new, gap before it)."""
        if seq is None:
            return True, False
        last = self._last.get(symbol)
        if last is not None and seq <= last:
            return False, False  # already seen (a replay after a resubscribe): not stored twice
        self._last[symbol] = seq
        return True, last is not None and seq > last + 1

    def reset(self, symbol: str | None = None) -> None:
        """Forget the baseline (a new connection starts a new one)."""
        if symbol is None:
            self._last.clear()
        else:
            self._last.pop(symbol, None)


def reconnect_delay(attempt: int, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt `attempt` (1, 2, ...): exponential back-off with full
    jitter, so that many clients cut off together do not come back together."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(base / 2, ceiling) if ceiling > base / 2 else ceiling


def feed_is_live(live_since_ms: int | None, seen_ms: int | None, now_ms: int, interval_s: float) -> bool:
    """The feed is the live path of an exchange when it has been declared live (connected,
    subscribed, resynced) and has been heard from within two poll intervals; otherwise the REST
    poller takes the exchange over."""
    if not live_since_ms or not seen_ms:
        return False
    return now_ms - seen_ms <= 2 * interval_s * 1000

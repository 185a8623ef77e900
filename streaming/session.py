"""One /ws connection's state: what it follows, what it was sent, how fast it writes. Pure Python:
the consumer does the waiting (groups, reads, sends) and keeps this up to date."""

import time
from collections import deque

from .filters import PriceFilter
from .live_alerts import LiveAlerts
from .protocol import Subscription

Market = tuple[str, str]  # (source, symbol)


class Session:
    def __init__(self, max_messages_per_second: int):
        self.seq = 0
        self.last_sent = time.monotonic()
        self.subscriptions: dict[Subscription, None] = {}
        # The newest price sent per (source, symbol): a subscriber never gets one it already has,
        # nor an older one after it (the snapshot and the broadcast of one tick can cross).
        self.newest: dict[Market, int] = {}
        # Book subscriptions' depths, by (source, symbol).
        self.book_depth: dict[Market, int] = {}
        # Alerts by id, and the filters of filtered price subscriptions by (source, symbol).
        self.alerts = LiveAlerts()
        self.filters: dict[Market, PriceFilter] = {}
        # The markets whose prices take deliver()'s slow path, which sends only what was asked for:
        # those with an alert or a filter, and those whose price group was left (prices already on
        # their way still arrive), until they are a plain price subscription again. Every other
        # price takes the shared fast path.
        self.watched: set[Market] = set()
        # When the client's latest messages arrived: more than the limit within any one second is
        # too many (a sliding window: a burst cannot hide across a fixed window's boundary).
        self.arrivals: deque[float] = deque(maxlen=max_messages_per_second)

    def over_rate(self) -> bool:
        """A message arrived: whether it is one too many."""
        now = time.monotonic()
        over = len(self.arrivals) == self.arrivals.maxlen and now - self.arrivals[0] < 1.0
        self.arrivals.append(now)
        return over

    def numbered(self, rendered: str) -> str:
        """A rendered JSON object with this connection's next `seq` as its last member."""
        self.seq += 1
        self.last_sent = time.monotonic()
        return f'{rendered[:-1]}, "seq": {self.seq}}}'

    def is_new(self, price: dict) -> bool:
        """Whether this price is newer than any sent for its market; if so, it is the newest now."""
        market = (price["source"], price["symbol"])
        if price["timestamp"] <= self.newest.get(market, -1):
            return False
        self.newest[market] = price["timestamp"]
        return True

    # --- subscriptions ------------------------------------------------------------------------
    def same_series(self, sub: Subscription) -> Subscription | None:
        """The subscription already following what `sub` follows, if any."""
        return next((s for s in self.subscriptions if s.series == sub.series), None)

    def follow(self, sub: Subscription, replacing: Subscription | None = None) -> None:
        """A subscription taken (or one of the same series replaced: its depth and filters with it)."""
        if replacing is not None:
            del self.subscriptions[replacing]
        self.subscriptions[sub] = None
        self._follow_filters(sub)
        if sub.channel == "book":
            self.book_depth[(sub.source, sub.symbol)] = sub.depth

    def forget(self, sub: Subscription) -> None:
        """A subscription dropped (for prices, the market still needs rewatch() and maybe its group left)."""
        del self.subscriptions[sub]
        if sub.channel == "book":
            self.book_depth.pop((sub.source, sub.symbol), None)
        if sub.channel == "prices":
            self.newest.pop((sub.source, sub.symbol), None)
            self.filters.pop((sub.source, sub.symbol), None)

    def matching(self, symbol: str, source: str | None) -> list[Subscription]:
        """The subscriptions an unsubscribe names: a symbol's, on one source or on every one."""
        return [s for s in self.subscriptions if s.symbol == symbol and (source is None or s.source == source)]

    def price_subscription(self, market: Market) -> Subscription | None:
        return next((s for s in self.subscriptions if s.channel == "prices" and (s.source, s.symbol) == market), None)

    def needs_prices(self, market: Market) -> bool:
        """Whether a price subscription or an alert needs the market's price group."""
        return self.price_subscription(market) is not None or self.alerts.on(market)

    def unpolled_alert_markets(self) -> set[Market]:
        """The markets of alerts without a subscription to their prices or candles (which keeps
        them polled already)."""
        polled = {(s.source, s.symbol) for s in self.subscriptions if s.channel != "book"}
        return self.alerts.markets() - polled

    def rewatch(self, market: Market) -> None:
        """The fast path for a plain price subscription without alerts, the slow path otherwise."""
        plain = market not in self.filters and self.price_subscription(market) is not None
        if plain and not self.alerts.on(market):
            self.watched.discard(market)
        else:
            self.watched.add(market)

    def _follow_filters(self, sub: Subscription) -> None:
        """A price subscription's filters; subscribing again replaces them (what was sent stays sent)."""
        if sub.channel != "prices":
            return
        market = (sub.source, sub.symbol)
        previous = self.filters.pop(market, None)
        if sub.filtered:
            self.filters[market] = PriceFilter(sub.min_interval, sub.min_change_pct, previous.last if previous else None)
        self.rewatch(market)

"""The sandbox's feed fault switches: set through its REST server (server.py), read by its feeds
(feeds.py), so both import this and neither the other's module for it."""

import threading

FEED_MODES = ("drop", "stall", "garbage", "skip")


class FeedFaults:
    """The feed fault switches, set from the REST sandbox's thread, read by the feed loop."""

    def __init__(self):
        self.lock = threading.Lock()
        self.modes: dict[str, str] = {}
        self.connections: dict[str, int] = {}

    def set(self, exchange: str, mode: str) -> None:
        if mode not in FEED_MODES:
            raise ValueError(f"mode must be one of {', '.join(FEED_MODES)}")
        with self.lock:
            self.modes[exchange] = mode

    def clear(self, exchange: str | None = None) -> None:
        with self.lock:
            if exchange:
                self.modes.pop(exchange, None)
            else:
                self.modes.clear()

    def mode(self, exchange: str) -> str | None:
        return self.modes.get(exchange)

    def take_skip(self, exchange: str) -> bool:
        with self.lock:
            if self.modes.get(exchange) == "skip":
                del self.modes[exchange]
                return True
            return False

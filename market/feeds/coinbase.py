"""Coinbase Exchange's public feed (ws-feed.exchange.coinbase.com): `matches` (every trade; its
`trade_id` grows by one per trade on a product, so a gap shows; `last_match` comes first after a
subscribe) and `heartbeat` (one message a second per product, so silence means trouble). Subscribe
within 5 s of connecting; the answer is a `subscriptions` message, or an `error` with a reason.
Coinbase has no candle channel: open candles move with each stored price."""

from ..domain.feeds import Ack, Alive, Event, Rejected, Trade
from ..exchanges.base import dec
from .base import Feed, iso_ms

CHANNELS = ["matches", "heartbeat"]


class CoinbaseFeed(Feed):
    name = "coinbase"
    sends_per_second = 4.0

    def market_id(self, symbol: str, rest_id: str) -> str:
        return rest_id  # BTC-USD

    def streams_per_market(self) -> int:
        return len(CHANNELS)

    def subscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return [{"type": "subscribe", "product_ids": market_ids, "channels": CHANNELS}]

    def unsubscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return [{"type": "unsubscribe", "product_ids": market_ids, "channels": CHANNELS}]

    def parse(self, message: object, symbols: dict[str, str], now_ms: int) -> list[Event]:
        kind = message["type"]
        if kind in ("match", "last_match"):
            symbol = symbols.get(message["product_id"])
            if symbol is None:
                return []
            return [Trade(symbol, dec(message["price"]), iso_ms(message["time"]), int(message["trade_id"]))]
        if kind == "subscriptions":
            return [Ack("subscriptions")]
        if kind == "error":
            return [Rejected(f"Coinbase error: {message.get('message', '')} {message.get('reason', '')}".strip())]
        return [Alive()]  # heartbeat, and types added later (clients are to ignore what they do not know)

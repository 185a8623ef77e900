"""The exchanges' live WebSocket feeds: one protocol class per exchange behind one base class,
chosen by name like the REST adapters (market.exchanges). No I/O here: the ingest process (ingest/) connects."""

from django.conf import settings

from .base import Feed
from .binance import BinanceFeed
from .coinbase import CoinbaseFeed
from .kraken import KrakenFeed

FEEDS: dict[str, type[Feed]] = {"binance": BinanceFeed, "coinbase": CoinbaseFeed, "kraken": KrakenFeed}

__all__ = ["FEEDS", "BinanceFeed", "CoinbaseFeed", "Feed", "KrakenFeed", "get_feed"]


def get_feed(name: str) -> Feed:
    return FEEDS[name](settings.EXCHANGE_FEED_URLS[name])

"""The exchanges' live WebSocket feeds: one protocol class per exchange behind one base class,
chosen by name like the REST adapters (market.exchanges); any other exchange's is ccxt.pro's (viaccxt).
No I/O here: the ingest process (ingest/) connects."""

from django.conf import settings

from .base import Feed
from .binance import BinanceFeed
from .coinbase import CoinbaseFeed
from .kraken import KrakenFeed
from .viaccxt import CcxtFeed

FEEDS: dict[str, type[Feed]] = {"binance": BinanceFeed, "coinbase": CoinbaseFeed, "kraken": KrakenFeed}

__all__ = ["FEEDS", "BinanceFeed", "CcxtFeed", "CoinbaseFeed", "Feed", "KrakenFeed", "get_feed"]


def get_feed(name: str) -> Feed:
    """The native feed of the exchange, else ccxt.pro's (any other exchange ccxt serves)."""
    if name not in FEEDS:
        return CcxtFeed(settings.EXCHANGE_FEED_URLS.get(name, ""), name)
    return FEEDS[name](settings.EXCHANGE_FEED_URLS[name])

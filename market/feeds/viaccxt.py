"""The live feed of any exchange ccxt serves, through ccxt.pro (the ingest process's
ingest.ccxt_connection): ccxt speaks the exchange's wire format, and this descriptor reads ccxt's
unified answers. It names the markets as ccxt does (its unified symbol, BTC/USDT, which the REST
listing of market.exchanges.viaccxt gives), chooses the watch the exchange offers, carries no
candles (the open candles move with each price, as for Coinbase), and places ccxt's WebSocket URLs
on the feed URL's host when one is set.
"""

from urllib.parse import urlsplit

from serving.ccxt_client import api_urls, rebase_urls

from ..domain.feeds import Event, Trade
from ..exchanges.base import dec
from .base import Feed

# ccxt.pro's watches that give a price, best first: trades (one request for many markets, or one
# per market), else the tickers' last price.
WATCHES = ("watchTradesForSymbols", "watchTrades", "watchTickers", "watchTicker")
# The most topics an exchange takes in one subscription request, where it has a limit ccxt.pro does
# not apply itself: Bybit's spot stream refuses more than 10 ("args size >10";
# https://bybit-exchange.github.io/docs/v5/ws/connect, "Public channel - Args limits").
SUBSCRIBE_BATCH = {"bybit": 10}


class CcxtFeed(Feed):
    """An exchange's feed as ccxt.pro speaks it (`CcxtFeed("okx", url)`; an empty url keeps ccxt's own)."""

    candle_timeframes = ()

    def __init__(self, url: str, name: str = ""):
        super().__init__(url)
        self.name = name

    def market_id(self, symbol: str, rest_id: str) -> str:
        return rest_id  # ccxt's unified symbol, from the REST listing

    def streams_per_market(self) -> int:
        return 1

    def subscribe_batches(self, market_ids: list[str]) -> list[list[str]]:
        """The markets in as few subscription requests as the exchange takes."""
        size = SUBSCRIBE_BATCH.get(self.name) or max(1, len(market_ids))
        return [market_ids[i:i + size] for i in range(0, len(market_ids), size)]

    def watch_method(self, has: dict) -> str | None:
        """The watch to use, from ccxt's `has` for the exchange (None: it has no live price in ccxt)."""
        return next((name for name in WATCHES if has.get(name)), None)

    def ws_urls(self, ccxt_urls):
        """ccxt's WebSocket URLs for this exchange, moved to the feed URL's host (unchanged without one).

        The feed URL is one of ccxt's URLs (or a URL ccxt builds on, as okx adds /public to
        wss://ws.okx.com:443/ws/v5) on another host, under an optional path prefix: with
        ws://127.0.0.1:9001/okx/ws/v5/public, okx's becomes ws://127.0.0.1:9001/okx/ws/v5. A URL naming
        none of ccxt's paths is a base, as for the REST adapters: each URL keeps its path after it."""
        if not self.url:
            return ccxt_urls
        parts = urlsplit(self.url)
        paths = sorted({urlsplit(u).path.rstrip("/") for u in api_urls(ccxt_urls)} - {""}, key=len, reverse=True)
        for path in paths:
            at = parts.path.find(path)
            if at >= 0 and parts.path[at + len(path):at + len(path) + 1] in ("", "/"):
                return rebase_urls(ccxt_urls, f"{parts.scheme}://{parts.netloc}{parts.path[:at]}")
        if isinstance(ccxt_urls, str):
            return self.url
        return rebase_urls(ccxt_urls, self.url.rstrip("/"))

    def parse(self, message: object, symbols: dict[str, str], now_ms: int) -> list[Event]:
        """ccxt's unified trades or tickers (a list of them: what a watch answered) as our trades (a
        ticker's: its last price), for the markets in `symbols` ({ccxt symbol: ours}). ccxt's `number`
        is `str` (serving.ccxt_client's pro_client), so a price has the exchange's digits."""
        out = []
        for item in message:
            price = item["last"] if "last" in item else item["price"]  # a ticker has `last`, a trade not
            if item["symbol"] in symbols and price is not None:
                out.append(Trade(symbols[item["symbol"]], dec(price), int(item.get("timestamp") or now_ms)))
        return out

    # Never used: ccxt.pro subscribes (ingest.ccxt_connection).
    def subscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        raise NotImplementedError("ccxt.pro subscribes")

    def unsubscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        raise NotImplementedError("ccxt.pro unsubscribes")

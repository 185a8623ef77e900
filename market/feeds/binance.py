"""Binance Spot market streams: combined streams (`/stream`, events wrapped as {"stream", "data"}),
subscribed live with SUBSCRIBE/UNSUBSCRIBE. Per market, `<market>@aggTrade` (the aggregate trade id
`a` grows by one per trade, so a gap shows) and `<market>@kline_<tf>` for every timeframe we store
(`x` says the candle closed). Published limits: 1,024 streams per connection, 5 incoming messages
a second, a connection lasts 24 hours; the server pings every 20 s (the client library answers)."""

from ..domain.candles import Candle
from ..domain.feeds import Ack, Alive, CandleUpdate, Event, Rejected, Trade
from ..domain.timeframes import TIMEFRAMES
from ..exchanges.base import dec
from .base import Feed, chunks

STREAMS_PER_MESSAGE = 200


class BinanceFeed(Feed):
    name = "binance"
    max_streams = 1024
    sends_per_second = 4.0  # published: 5
    max_age_seconds = 23.5 * 3600  # published: cut at 24 h
    candle_timeframes = tuple(TIMEFRAMES)

    def market_id(self, symbol: str, rest_id: str) -> str:
        return rest_id  # BTCUSDT

    def streams_per_market(self) -> int:
        return 1 + len(TIMEFRAMES)

    def _streams(self, market_ids: list[str]) -> list[str]:
        out = []
        for market in market_ids:
            name = market.lower()
            out.append(f"{name}@aggTrade")
            out.extend(f"{name}@kline_{tf}" for tf in TIMEFRAMES)
        return out

    def _requests(self, method: str, market_ids: list[str], req_id: int) -> list[dict]:
        return [
            {"method": method, "params": part, "id": req_id + i}
            for i, part in enumerate(chunks(self._streams(market_ids), STREAMS_PER_MESSAGE))
        ]

    def subscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return self._requests("SUBSCRIBE", market_ids, req_id)

    def unsubscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return self._requests("UNSUBSCRIBE", market_ids, req_id)

    def probe(self, req_id: int) -> dict:
        return {"method": "LIST_SUBSCRIPTIONS", "id": req_id}

    def parse(self, message: object, symbols: dict[str, str], now_ms: int) -> list[Event]:
        if "data" in message and "stream" in message:
            data = message["data"]
            kind = data["e"]
            symbol = symbols.get(data["s"])
            if symbol is None:
                return []
            if kind == "aggTrade":
                return [Trade(symbol, dec(data["p"]), int(data["T"]), int(data["a"]))]
            if kind == "kline":
                k = data["k"]
                if k["i"] not in TIMEFRAMES:
                    return []
                candle = Candle(int(k["t"]), dec(k["o"]), dec(k["h"]), dec(k["l"]), dec(k["c"]), dec(k["v"]), bool(k["x"]))
                return [CandleUpdate(symbol, k["i"], candle)]
            return [Alive()]
        error = message.get("error") if isinstance(message.get("error"), dict) else message
        if "code" in error and "msg" in error:
            return [Rejected(f"Binance error {error['code']}: {error['msg']}")]
        if "id" in message and "result" in message:
            return [Ack(str(message["id"]))]
        return [Alive()]

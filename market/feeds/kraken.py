"""Kraken's WebSocket API v2 (ws.kraken.com/v2): `trade` (its `trade_id` is a sequence per
pair, so a gap shows) and `ohlc` for each interval we store (Kraken's weekly candle starts on
Thursday, ours on Monday: 1w is left to the REST sync and the moving open candle). Every request
is answered with `success` true or false and an `error`; `ping` with `pong`; a `heartbeat` comes
every second. Pairs are BTC/USD (v2 says BTC where REST says XBT); numbers are JSON numbers."""

from ..domain.candles import Candle
from ..domain.feeds import Ack, Alive, CandleUpdate, Event, Rejected, Trade
from ..exchanges.base import dec
from .base import Feed, iso_ms

INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d"}


class KrakenFeed(Feed):
    name = "kraken"
    sends_per_second = 4.0
    candle_timeframes = tuple(INTERVALS.values())  # not 1w: moved with each price

    def market_id(self, symbol: str, rest_id: str) -> str:
        return f"{symbol}/USD"

    def streams_per_market(self) -> int:
        return 1 + len(INTERVALS)

    def _requests(self, method: str, market_ids: list[str], req_id: int) -> list[dict]:
        # A new subscription asks for the newest candles at once (snapshot), not old trades.
        wanted = [({"channel": "trade"}, False)] + [({"channel": "ohlc", "interval": m}, True) for m in INTERVALS]
        out = []
        for i, (params, snapshot) in enumerate(wanted):
            params = {**params, "symbol": market_ids}
            if method == "subscribe":
                params["snapshot"] = snapshot
            out.append({"method": method, "params": params, "req_id": req_id + i})
        return out

    def subscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return self._requests("subscribe", market_ids, req_id)

    def unsubscribe(self, market_ids: list[str], req_id: int) -> list[dict]:
        return self._requests("unsubscribe", market_ids, req_id)

    def probe(self, req_id: int) -> dict:
        return {"method": "ping", "req_id": req_id}

    def parse(self, message: object, symbols: dict[str, str], now_ms: int) -> list[Event]:
        method = message.get("method")
        if method in ("subscribe", "unsubscribe"):
            if message.get("success"):
                return [Ack(method)]
            return [Rejected(f"Kraken error: {message.get('error', 'request refused')}")]
        if method == "pong":
            return [Ack("pong")]
        channel = message.get("channel")
        if channel == "trade":
            return [
                Trade(symbols[row["symbol"]], dec(row["price"]), iso_ms(row["timestamp"]), int(row["trade_id"]))
                for row in message["data"]
                if row["symbol"] in symbols
            ]
        if channel == "ohlc":
            out = []
            for row in message["data"]:
                timeframe = INTERVALS.get(int(row["interval"]))
                if timeframe is None or row["symbol"] not in symbols:
                    continue
                candle = Candle(iso_ms(row["interval_begin"]), dec(row["open"]), dec(row["high"]), dec(row["low"]),
                                dec(row["close"]), dec(row["volume"]), False).with_closed(timeframe, now_ms)
                out.append(CandleUpdate(symbols[row["symbol"]], timeframe, candle))
            return out
        return [Alive()]  # heartbeat, status

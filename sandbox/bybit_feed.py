"""The sandbox's Bybit public WebSocket v5 for the spot category (/bybit/v5/public/spot on the feed
server, sandbox.feeds), as https://bybit-exchange.github.io/docs/v5/ws/connect documents it and as
ccxt.pro's bybit speaks it:

- `{"req_id": "...", "op": "subscribe"|"unsubscribe", "args": ["publicTrade.BTCUSDT", "tickers.BTCUSDT"]}`
  answered once for the whole request, as the public spot stream answers:
  `{"success": true, "ret_msg": "subscribe", "conn_id": "...", "req_id": "...", "op": "subscribe"}`; a
  request naming a topic the sandbox lacks changes nothing and is refused, `{"success": false,
  "ret_msg": "Invalid symbol :[publicTrade.NOPEUSDT]", ...}` (every such topic in the brackets); a
  frame that is not a request, `"ret_msg": "error:invalid op"`;
- `{"req_id": "...", "op": "ping"}` answered `{"success": true, "ret_msg": "pong", "conn_id": "...",
  "op": "ping"}` (the spot stream's pong: no req_id);
- trades pushed as `{"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts", "data": [{"T", "s", "S",
  "v", "p", "i", "BT"}]}` (no "L": Bybit's docs make it a field of the futures' trades), price and size
  strings, at the price the sandbox's REST API prints for bybit at that moment; the `tickers` topic
  pushes the spot ticker snapshot (`{"topic", "ts", "type": "snapshot", "cs", "data": {"symbol",
  "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h", "volume24h", "turnover24h",
  "price24hPcnt", "usdIndexPrice"}}`, the REST API's ticker less its book) at the same pace.

The symbols are the REST API's (sandbox.bybit: every sandbox symbol against USDT, BTCUSDT), and so
is the way numbers are printed. A connection's subscriptions are its topics; the feed server's trade
loop keys trade ids by them.
"""

import json
import uuid

from . import simulation as sim
from .bybit import VENUE, listed, num, tickers

TOPICS = ("publicTrade", "tickers")
OPS = ("subscribe", "unsubscribe")
MAX_ARGS = 10  # "Spot can input up to 10 args for each subscription request sent to one connection"
SPOT_TICKER = ("symbol", "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h", "volume24h", "turnover24h",
               "price24hPcnt", "usdIndexPrice")


def known(topic: object, symbols: dict[str, str]) -> bool:
    """publicTrade.BTCUSDT or tickers.BTCUSDT, for a symbol the sandbox lists."""
    kind, _, name = topic.partition(".") if isinstance(topic, str) else ("", "", "")
    return kind in TOPICS and name in symbols


async def request(server, client, raw: str | bytes) -> None:
    """One client frame: a ping, or a subscribe or unsubscribe request."""
    conn_id = str(uuid.UUID(int=id(client) & (2**128 - 1)))
    try:
        message = json.loads(raw)
        op, args = message.get("op"), message.get("args")
    except (ValueError, AttributeError):
        message, op, args = {}, None, None
    req_id = message.get("req_id")
    req_id = "" if req_id is None else str(req_id)
    if op == "ping":
        await client.send(server.faults, {"success": True, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"})
        return
    if op not in OPS or not isinstance(args, list) or not args:
        await client.send(server.faults, {"success": False, "ret_msg": "error:invalid op", "conn_id": conn_id,
                                          "req_id": req_id, "op": op if isinstance(op, str) else ""})
        return
    if op == "subscribe" and len(args) > MAX_ARGS:
        await client.send(server.faults, {"success": False, "ret_msg": f"args size >{MAX_ARGS}", "conn_id": conn_id,
                                          "req_id": req_id, "op": op})
        return
    symbols = listed(server.market)
    bad = [str(topic) for topic in args if not known(topic, symbols)]
    if bad:
        await client.send(server.faults, {"success": False, "ret_msg": f"Invalid symbol :[{','.join(bad)}]",
                                          "conn_id": conn_id, "req_id": req_id, "op": op})
        return
    for topic in args:
        (client.trades.add if op == "subscribe" else client.trades.discard)(topic)
    await client.send(server.faults, {"success": True, "ret_msg": op, "conn_id": conn_id, "req_id": req_id, "op": op})


def trade(market, topic: str, trade_id: int, now: int) -> dict:
    """A push for one topic: a trade at the price the REST API prints for bybit at the trade's time,
    or (tickers) the REST API's spot ticker."""
    kind, _, name = topic.partition(".")
    if kind == "tickers":
        row = tickers(market, {"category": "spot", "symbol": name})["list"][0]
        return {"topic": topic, "ts": now, "type": "snapshot", "cs": trade_id, "data": {k: row[k] for k in SPOT_TICKER}}
    base = listed(market)[name]
    price = market.scale(VENUE, base, sim.price(base, now))
    return {"topic": topic, "type": "snapshot", "ts": now, "data": [{
        "T": now, "s": name, "S": "Buy", "v": "0.01", "p": num(price), "i": str(trade_id), "BT": False}]}

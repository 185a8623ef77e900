"""The sandbox's OKX public WebSocket API v5 (/okx/ws/v5/public on the feed server, sandbox.feeds),
as OKX documents it and as ccxt.pro's okx speaks it:

- `{"op": "subscribe"|"unsubscribe", "args": [{"channel": "trades", "instId": "BTC-USDT"}, ...]}`, each
  arg answered on its own, `{"event": "subscribe", "arg": {...}, "connId": "..."}`, or refused with
  `{"event": "error", "code": "60018", "msg": "...", "connId": "..."}` (60012 for a request that is
  not one);
- the text frame "ping" answered "pong" (OKX has no WebSocket-level ping);
- trades pushed as `{"arg": {"channel": "trades", "instId"}, "data": [{"instId", "tradeId", "px", "sz",
  "side", "ts", "count", "source", "seqId"}]}`, every field a string but seqId, at the price the
  sandbox's REST API prints for okx at that moment; the `tickers` channel pushes the REST API's
  ticker at the same pace (ccxt's watch_tickers, for the feeds that have no trades to watch).

The instruments are the REST API's (sandbox.okx: every sandbox symbol against USDT, BTC-USDT), and
so is the way numbers are printed. A connection's subscriptions are its instIds (a ticker's:
tickers:BTC-USDT); the feed server's trade loop keys trade ids by them.
"""

import json

from . import simulation as sim
from .okx import QUOTE, num, ticker

CHANNELS = ("trades", "tickers")


def base_of(inst_id: object, listed: set[str]) -> str | None:
    """BTC for BTC-USDT when the sandbox lists BTC."""
    base, _, quote = inst_id.partition("-") if isinstance(inst_id, str) else ("", "", "")
    return base if base in listed and quote == QUOTE else None


async def request(server, client, raw: str | bytes) -> None:
    """One client frame: "ping", or a subscribe or unsubscribe request."""
    conn_id = format(id(client) & 0xFFFFFFFF, "08x")
    if raw == "ping":
        await client.send(server.faults, "pong")
        return
    try:
        message = json.loads(raw)
        op, args = message.get("op"), message.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            raise ValueError(op)
    except (ValueError, AttributeError):
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        await client.send(server.faults, {"event": "error", "code": "60012", "msg": f"Invalid request: {text[:200]}",
                                          "connId": conn_id})
        return
    for arg in args:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        inst_id = arg.get("instId") if isinstance(arg, dict) else None
        if channel not in CHANNELS or base_of(inst_id, server.listed) is None:
            await client.send(server.faults, {
                "event": "error", "code": "60018", "connId": conn_id,
                "msg": f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use the correct URL, "
                       "channel and parameters referring to API document."})
            continue
        key = inst_id if channel == "trades" else f"{channel}:{inst_id}"
        (client.trades.add if op == "subscribe" else client.trades.discard)(key)
        await client.send(server.faults, {"event": op, "arg": {"channel": channel, "instId": inst_id}, "connId": conn_id})


def trade(market, key: str, trade_id: int, now: int) -> dict:
    """A trade push for one market, at the price the REST API prints for okx at the trade's time (a
    subscription to tickers: the REST API's ticker)."""
    channel, _, inst_id = key.rpartition(":")
    if channel == "tickers":
        return {"arg": {"channel": channel, "instId": inst_id}, "data": ticker(market, {"instId": inst_id})}
    base = inst_id.partition("-")[0]
    price = market.scale("okx", base, sim.price(base, now))
    return {"arg": {"channel": "trades", "instId": inst_id}, "data": [{
        "instId": inst_id, "tradeId": str(trade_id), "px": num(price), "sz": "0.01", "side": "buy",
        "ts": str(now), "count": "1", "source": "0", "seqId": trade_id}]}

"""The floor under the ingest's cost per trade: one process of bare `websockets` clients (uvloop, as
the ingest runs) subscribed to the same feeds, the same markets and the same streams as the ingest
(each feed class's own subscribe messages, as many markets a connection as the ingest puts on one),
doing nothing with a message but json.loads (the ingest's feeds decode with json too) and counting
the trades in it.

python -m bench.capacity_floor FEED_BASE EXCHANGES SYMBOLS WARM SECONDS: FEED_BASE is the sandbox's
ws://host:port, EXCHANGES comma-separated, SYMBOLS comma-separated (each followed on every exchange).
Prints one JSON line: trades and messages in the window, the process's CPU in it (user + system,
every thread), the window's length and the RSS at its end."""

import asyncio
import json
import os
import sys
import time

import uvloop
from websockets.asyncio.client import connect

PATHS = {"binance": "/binance/stream", "coinbase": "/coinbase", "kraken": "/kraken/v2"}
REST_IDS = {"binance": "{}USDT", "coinbase": "{}-USD", "kraken": "{}/USD"}  # what the REST listing calls a market


class Counts:
    def __init__(self):
        self.trades = self.messages = 0


def is_trade(exchange: str, message: object) -> int:
    """Trades in a decoded message (Kraken's trade messages carry a list of them)."""
    if not isinstance(message, dict):
        return 0
    if exchange == "binance":
        return int(message.get("data", {}).get("e") == "aggTrade")
    if exchange == "coinbase":
        return int(message.get("type") == "match")
    return len(message["data"]) if message.get("channel") == "trade" and message.get("type") == "update" else 0


async def follow(url: str, exchange: str, feed, market_ids: list[str], counts: Counts) -> None:
    async with connect(url, max_size=None, ping_interval=None) as ws:
        for message in feed.subscribe(market_ids, 1):
            await ws.send(json.dumps(message))
        async for raw in ws:
            counts.messages += 1
            counts.trades += is_trade(exchange, json.loads(raw))


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


async def main(base: str, exchanges: list[str], symbols: list[str], warm: float, seconds: float) -> dict:
    from market.feeds import FEEDS

    counts = Counts()
    tasks = []
    for exchange in exchanges:
        feed = FEEDS[exchange](base + PATHS[exchange])
        ids = [feed.market_id(s, REST_IDS[exchange].format(s)) for s in symbols]
        per_connection = max(1, feed.max_streams // feed.streams_per_market())  # as the ingest splits them
        for i in range(0, len(ids), per_connection):
            tasks.append(asyncio.create_task(follow(feed.url, exchange, feed, ids[i:i + per_connection], counts)))
    await asyncio.sleep(warm)
    trades, messages, cpu, started = counts.trades, counts.messages, cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    out = {"trades": counts.trades - trades, "messages": counts.messages - messages, "cpu": cpu_seconds() - cpu,
           "seconds": time.monotonic() - started, "rss_mb": rss_mb()}
    for task in tasks:
        if task.done() and task.exception():
            raise task.exception()
        task.cancel()
    return out


if __name__ == "__main__":
    base, exchanges, symbols, warm, seconds = sys.argv[1:6]
    print(json.dumps(uvloop.run(main(base, exchanges.split(","), symbols.split(","), float(warm), float(seconds)))), flush=True)

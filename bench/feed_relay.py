"""The floor for feed-to-subscriber latency: a bare `websockets` server that reads the sandbox's
Binance feed (BTCUSDT aggregate trades) and relays each message to every client as it arrives,
with nothing stored. python -m bench.feed_relay FEED_URL PORT"""

import asyncio
import json
import sys

import websockets
from websockets.asyncio.server import broadcast, serve


async def main(feed_url: str, port: int) -> None:
    clients = set()

    async def handler(ws):
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, ping_interval=20):
        async with websockets.connect(feed_url) as feed:
            await feed.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}))
            async for raw in feed:
                broadcast(clients, raw)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

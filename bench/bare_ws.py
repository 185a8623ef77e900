"""Baseline for the streaming benchmark: a bare `websockets` broadcast server.
Clients send "subscribe"; a message {"publish": {...}} from any client is broadcast to all
subscribers. python -m bench.bare_ws PORT"""

import asyncio
import json
import sys

import websockets

subscribers: set = set()


async def handler(ws):
    async for message in ws:
        if message == "subscribe":
            subscribers.add(ws)
        else:
            payload = json.dumps(json.loads(message)["publish"])
            websockets.broadcast(subscribers, payload)
    subscribers.discard(ws)


async def main(port: int) -> None:
    # Keepalive pings every 20 s, as uvicorn sends them to cryptosite's clients (and websockets by default).
    async with websockets.serve(handler, "127.0.0.1", port, max_queue=None, ping_interval=20):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

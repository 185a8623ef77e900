"""N WebSocket subscribers that time each price they receive against the trade time it carries:
python -m bench.feedclients URL N SECONDS (ours|relay). Prints "ready", then one JSON line of
latencies in ms (receive time minus the exchange's trade time; same machine, same clock)."""

import asyncio
import json
import sys
import time

import websockets

from .common import raise_fd_limit


async def client(url: str, kind: str, latencies: list, ready: asyncio.Event, counted: list, n: int, stop: asyncio.Event):
    async with websockets.connect(url, open_timeout=60, max_queue=None) as ws:
        if kind == "ours":
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC", "source": "binance"}))
        counted.append(1)
        if len(counted) == n:
            ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            now = time.time() * 1000
            message = json.loads(raw)
            if kind == "ours" and message.get("type") == "price_update":
                latencies.append(now - message["timestamp"])
            elif kind == "relay" and "data" in message:
                latencies.append(now - message["data"]["T"])


async def main(url: str, n: int, seconds: float, kind: str) -> None:
    latencies: list[float] = []
    ready, stop, counted = asyncio.Event(), asyncio.Event(), []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(url, kind, latencies, ready, counted, n, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(ready.wait(), 120)
    print("ready", flush=True)
    latencies.clear()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(latencies), flush=True)


if __name__ == "__main__":
    raise_fd_limit()
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))

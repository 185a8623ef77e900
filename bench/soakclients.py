"""N WebSocket subscribers of one symbol that keep every price they receive, for the soak check:
python -m bench.soakclients URL N. Prints "ready" once all are subscribed; stops when a price of
-1 arrives (or a client's connection ends) and prints one JSON line: per client, the prices in the
order received."""

import asyncio
import json
import sys

import websockets

from .wsclients import connect


async def client(url: str, ready: asyncio.Event, subscribed: list[int], out: list) -> None:
    prices: list[float] = []
    out.append(prices)
    async with await connect(url) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
        await ws.recv()  # subscribed
        subscribed[0] += 1
        await ready.wait()
        try:
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") != "price_update":
                    continue
                if message["price"] == -1:
                    return
                if message["price"] >= 1:  # not the snapshot from before the run
                    prices.append(message["price"])
        except websockets.ConnectionClosed:
            return


async def main(url: str, n: int) -> None:
    ready, subscribed, out = asyncio.Event(), [0], []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(url, ready, subscribed, out)))
        if i % 50 == 49:
            await asyncio.sleep(0.1)
    while subscribed[0] < n:
        await asyncio.sleep(0.1)
        if any(t.done() and t.exception() for t in tasks):
            raise next(t.exception() for t in tasks if t.done() and t.exception())
    ready.set()
    print("ready", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

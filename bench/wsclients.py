"""N WebSocket subscribers in one process: python -m bench.wsclients URL N ROUNDS.
Prints "ready" once all are subscribed, then a JSON line with the latency of every delivered
price_update (arrival time minus the timestamp the publisher put in it)."""

import asyncio
import json
import sys
import time

import websockets

ready_ms = [0.0]


async def connect(url: str):
    """Open a connection, retrying a refused handshake as a real client's reconnect would."""
    for attempt in range(5):
        try:
            return await websockets.connect(url, max_queue=None, open_timeout=120, ping_interval=None)
        except (OSError, EOFError, websockets.exceptions.InvalidHandshake):
            await asyncio.sleep(0.5 * (attempt + 1))
    return await websockets.connect(url, max_queue=None, open_timeout=120, ping_interval=None)


async def client(url: str, rounds: int, latencies: list[float], ready: asyncio.Event, connected: list[int], protocol: str):
    async with await connect(url) as ws:
        if protocol == "cryptosite":
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
            await ws.recv()  # subscribed
        else:
            await ws.send("subscribe")
        connected[0] += 1
        await ready.wait()
        since = ready_ms[0]
        got = 0
        while got < rounds:
            message = json.loads(await ws.recv())
            # Count only prices published after everyone subscribed (not the snapshot).
            if message.get("type") == "price_update" and message.get("timestamp", 0) >= since:
                latencies.append(time.time() * 1000 - message["timestamp"])
                got += 1


async def main(url: str, n: int, rounds: int, protocol: str) -> None:
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = [0]
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(url, rounds, latencies, ready, connected, protocol)))
        if i % 50 == 49:
            await asyncio.sleep(0.1)  # about 500 new connections a second: do not SYN-flood the server
    while connected[0] < n:
        await asyncio.sleep(0.1)
        if any(t.done() and t.exception() for t in tasks):
            raise next(t.exception() for t in tasks if t.done() and t.exception())
    ready_ms[0] = time.time() * 1000
    ready.set()
    print("ready", flush=True)
    try:
        # The publisher starts once every client process is ready (20,000 subscribers take the
        # last ones half a minute more to connect), then waits 1 s + 1 s per 2,000 subscribers
        # between rounds: the window counts from this process's own ready, so it covers both.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=90 + rounds * 20)
    except TimeoutError:
        pass
    print(json.dumps({"latencies": latencies}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "cryptosite"))

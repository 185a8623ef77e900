"""Redis restarts under a running server: every subscriber hears the next prices again, with its
per-connection `seq` unbroken, and the rate limit and the hot reads come back by themselves."""

import asyncio
import json
import time
from decimal import Decimal

import httpx
import pytest
import websockets

from market.payloads import price_payload
from market.ticks import StoredTick
from serving.channel_layer import ProcessFanoutChannelLayer
from streaming.groups import price_group
from tests.conftest import OwnRedis
from tests.e2e.conftest import serving

pytestmark = pytest.mark.e2e

SUBSCRIBERS = 100


@pytest.fixture
def redis(tmp_path):
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def server(redis, tmp_path):
    with serving(tmp_path, REDIS_URL=redis.url, WEB_CONCURRENCY="2", RATE_LIMIT="100000/m",
                 WS_MAX_CONNECTIONS_PER_IP="0") as (port, _proc):
        yield port


async def subscriber(port: int, subscribed: list, prices: dict, seqs: dict, key: int, want: int):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
        seqs[key] = [json.loads(await ws.recv())["seq"]]
        prices[key] = []
        subscribed.append(key)
        while len(prices[key]) < want:
            message = json.loads(await asyncio.wait_for(ws.recv(), 40))
            seqs[key].append(message["seq"])
            if message["type"] == "price_update":
                prices[key].append(message["price"])


async def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_every_subscriber_hears_again_after_redis_restarts(redis, server):
    port = server
    publisher = ProcessFanoutChannelLayer(hosts=[{"address": redis.url}], prefix="cryptosite")
    subscribed, prices, seqs = [], {}, {}

    async def publish(price: int) -> None:
        now = int(time.time() * 1000)
        tick = StoredTick("binance", "BTC", Decimal(price), now, now)
        await publisher.group_send(price_group("binance", "BTC"), {"type": "price.update", "data": price_payload(tick)})

    clients = [asyncio.create_task(subscriber(port, subscribed, prices, seqs, i, 2)) for i in range(SUBSCRIBERS)]
    try:
        await until(lambda: len(subscribed) == SUBSCRIBERS, 60, "not every client subscribed")
        await asyncio.sleep(0.5)
        await publish(1)
        await until(lambda: all(prices[k] for k in prices), 10, "not every subscriber got the first price")

        redis.stop()  # memberships, inboxes, everything in Redis is gone
        await asyncio.sleep(2)
        redis.start()
        back = time.monotonic()
        # Publish until every subscriber has its second price; each must get it within 10 s.
        while not all(task.done() for task in clients):
            assert time.monotonic() - back < 10, f"{sum(not t.done() for t in clients)} subscribers still deaf"
            try:
                await publish(2)
            except Exception:  # the publisher reconnects too
                pass
            await asyncio.sleep(0.5)
        for task in clients:
            task.result()
    finally:
        for task in clients:
            task.cancel()
        await publisher.close_pools()
    assert all(got == [1, 2] for got in prices.values())
    assert all(s == list(range(s[0], s[0] + len(s))) for s in seqs.values())  # no gap in any connection's seq

    # The rate limit and the hot reads recover by themselves too.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.get("/coins")
        assert response.status_code == 200 and "x-ratelimit-remaining" in response.headers

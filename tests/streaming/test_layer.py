"""streaming.layer on the real Redis: one reader per process delivers each group message to every
local member once, forgets channels that stopped receiving, and waits for a free connection."""

import asyncio
import os

import pytest

from streaming.layer import ProcessFanoutChannelLayer


@pytest.fixture
async def layer():
    instance = ProcessFanoutChannelLayer(hosts=[{"address": os.environ["REDIS_URL"], "max_connections": 3}],
                                         prefix=f"test-layer-{os.getpid()}", capacity=50)
    yield instance
    await instance.flush()
    await instance.close_pools()


async def test_a_group_message_reaches_every_local_member_once(layer):
    channels = [await layer.new_channel() for _ in range(3)]
    for name in channels:
        await layer.group_add("prices.binance.BTC", name)
    waiting = [asyncio.create_task(layer.receive(name)) for name in channels]
    await asyncio.sleep(0.1)
    await layer.group_send("prices.binance.BTC", {"type": "price.update", "n": 1})
    await layer.group_send("prices.binance.BTC", {"type": "price.update", "n": 2})
    first = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    second = await asyncio.wait_for(asyncio.gather(*(layer.receive(name) for name in channels)), 5)
    assert [m["n"] for m in first] == [1, 1, 1] and [m["n"] for m in second] == [2, 2, 2]
    assert all("__asgi_channel__" not in m for m in first + second)


async def test_a_channel_that_stopped_receiving_is_forgotten_and_its_messages_dropped(layer):
    leaving, staying = await layer.new_channel(), await layer.new_channel()
    for name in (leaving, staying):
        await layer.group_add("g", name)
    gone = asyncio.create_task(layer.receive(leaving))
    kept = asyncio.create_task(layer.receive(staying))
    await asyncio.sleep(0.1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await layer.group_send("g", {"type": "x"})
    assert (await asyncio.wait_for(kept, 5))["type"] == "x"
    assert leaving not in layer._inboxes  # nothing piles up for a consumer that has left


async def test_direct_sends_to_one_channel_arrive_in_order(layer):
    name = await layer.new_channel()
    for i in range(5):
        await layer.send(name, {"type": "x", "i": i})
    assert [(await asyncio.wait_for(layer.receive(name), 5))["i"] for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_more_concurrent_calls_than_connections_wait_instead_of_failing(layer):
    names = [await layer.new_channel() for _ in range(40)]
    await asyncio.wait_for(asyncio.gather(*(layer.group_add("many", n) for n in names)), 30)
    receivers = [asyncio.create_task(layer.receive(n)) for n in names]
    await asyncio.sleep(0.1)
    await layer.group_send("many", {"type": "x"})
    assert len(await asyncio.wait_for(asyncio.gather(*receivers), 10)) == 40

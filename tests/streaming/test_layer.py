"""serving.channel_layer on the real Redis: one reader per process delivers each group message to every
local member once, forgets channels that stopped receiving, waits for a free connection, and
keeps its memberships through a Redis restart and past their expiry."""

import asyncio
import os
import time

import pytest

from serving.channel_layer import ProcessFanoutChannelLayer
from tests.conftest import OwnRedis


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


async def test_a_group_message_is_stored_once_per_process_and_reaches_each_processs_members(layer):
    """Two processes (two layers, as two server processes have): one message in each process's
    inbox in Redis, whatever the number of its members; each member gets it once."""
    other = ProcessFanoutChannelLayer(hosts=[{"address": os.environ["REDIS_URL"], "max_connections": 3}],
                                      prefix=layer.prefix, capacity=50)
    try:
        mine = [await layer.new_channel() for _ in range(3)]
        theirs = [await other.new_channel() for _ in range(2)]
        for owner, name in [(layer, n) for n in mine] + [(other, n) for n in theirs]:
            await owner.group_add("prices.binance.ETH", name)
        await layer.group_send("prices.binance.ETH", {"type": "price.update", "n": 7})
        redis = layer.connection(0)
        for owner, name in ((layer, mine[0]), (other, theirs[0])):
            assert await redis.zcard(layer.prefix + owner.non_local_name(name)) == 1
        got = await asyncio.wait_for(asyncio.gather(*(layer.receive(n) for n in mine), *(other.receive(n) for n in theirs)), 5)
        assert [m["n"] for m in got] == [7] * 5
        assert all(set(m) == {"type", "n"} for m in got)  # nothing of the layer's own left in the message
    finally:
        await other.close_pools()


async def test_a_group_member_that_is_not_a_process_channel_gets_the_message_too(layer):
    """A plain channel (a worker's, say) in a group is sent the message as channels-redis would."""
    await layer.group_add("alerts", "worker.alerts")
    local = await layer.new_channel()
    await layer.group_add("alerts", local)
    await layer.group_send("alerts", {"type": "alert", "id": 3})
    assert (await asyncio.wait_for(layer.receive("worker.alerts"), 5))["id"] == 3
    assert (await asyncio.wait_for(layer.receive(local), 5))["id"] == 3


async def test_a_full_inbox_drops_the_group_message_for_that_process_only(layer, caplog):
    """Capacity per process inbox, as channels-redis's: a process that has stopped reading does
    not make the sender wait or fail; the drop is logged, and the other process still gets it."""
    other = ProcessFanoutChannelLayer(hosts=[{"address": os.environ["REDIS_URL"], "max_connections": 3}],
                                      prefix=layer.prefix, capacity=50)
    try:
        full, reading = await layer.new_channel(), await other.new_channel()
        await layer.group_add("g", full)
        await other.group_add("g", reading)
        caplog.set_level("INFO", logger="serving.channel_layer")
        for i in range(60):  # capacity 50, nobody reading
            await layer.group_send("g", {"type": "x", "i": i})
            assert (await asyncio.wait_for(other.receive(reading), 5))["i"] == i
        assert await layer.connection(0).zcard(layer.prefix + layer.non_local_name(full)) == 50
        assert sum("inboxes full" in r.getMessage() for r in caplog.records) == 10
    finally:
        await other.close_pools()


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


@pytest.fixture
async def own(tmp_path):
    """A Redis of the test's own (to stop and start), a subscriber's layer on it and a publisher's."""
    redis = OwnRedis(tmp_path)
    hosts = [{"address": redis.url, "socket_timeout": 30}]
    layers = [ProcessFanoutChannelLayer(hosts=hosts, prefix="own") for _ in range(2)]
    yield redis, *layers
    for each in layers:
        await each.close_pools()
    redis.stop()


async def _send_until(sender, group: str, message: dict, received: list, seconds: float, what: str) -> None:
    """Publish until the subscriber has something (the publisher reconnects too)."""
    since = time.monotonic()
    while not any(m == message for m in received):
        assert time.monotonic() - since < seconds, what
        try:
            await sender.group_send(group, dict(message))
        except Exception:
            pass
        await asyncio.sleep(0.5)


async def test_memberships_are_added_again_when_redis_comes_back_empty(own):
    redis, layer, sender = own
    received = []
    name = await layer.new_channel()
    layer.attach(name, received.append)
    await layer.group_add("prices.binance.BTC", name)
    await sender.group_send("prices.binance.BTC", {"type": "price.update", "n": 1})
    await _until(lambda: [m["n"] for m in received] == [1], 5)
    redis.stop()  # memberships, inboxes, everything in Redis is gone
    await asyncio.sleep(1.5)
    redis.start()
    await _send_until(sender, "prices.binance.BTC", {"type": "price.update", "n": 2}, received, 10,
                      "no message reached the subscriber within 10 s of Redis returning")


async def test_memberships_are_renewed_long_before_they_expire(layer, monkeypatch):
    monkeypatch.setattr(ProcessFanoutChannelLayer, "REJOIN_SECONDS", 0.5)
    layer.group_expiry = 3  # seconds: without renewal the membership would be gone within the test
    name = await layer.new_channel()
    received = []
    layer.attach(name, received.append)
    await layer.group_add("g", name)
    await asyncio.sleep(4)
    await layer.group_send("g", {"type": "x"})
    await _until(lambda: len(received) == 1, 5)


async def _until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_joining_while_redis_is_down_takes_effect_once_it_is_back(own):
    redis, layer, sender = own
    received = []
    name = await layer.new_channel()
    layer.attach(name, received.append)
    redis.stop()
    await layer.group_add("prices.binance.ETH", name)  # a subscribe during the outage: no error
    redis.start()
    await _send_until(sender, "prices.binance.ETH", {"type": "price.update", "n": 1}, received, 10,
                      "the membership never reached Redis")

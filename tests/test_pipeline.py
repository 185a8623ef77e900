"""The edge's pipelined Redis connection, on a real Redis of the test's own."""

import asyncio

import pytest

from core.pipeline import PipelinedRedis, RedisUnavailable, Script
from tests.conftest import OwnRedis


def test_urls_are_read_as_redis_py_reads_them():
    tls = PipelinedRedis("rediss://app:p%40ss@cache.example:6380/3")
    assert (tls.scheme, tls.host, tls.port, tls.username, tls.password, tls.db) == ("rediss", "cache.example", 6380, "app", "p@ss", 3)
    plain = PipelinedRedis("redis://:secret@127.0.0.1/0")
    assert (plain.port, plain.username, plain.password, plain.db) == (6379, "", "secret", 0)
    socket = PipelinedRedis("unix:///run/redis.sock?db=2")
    assert (socket.socket_path, socket.db) == ("/run/redis.sock", 2)


async def test_concurrent_commands_on_one_connection_each_get_their_own_reply(tmp_path):
    redis = OwnRedis(tmp_path)
    client = PipelinedRedis(redis.url)
    try:
        await asyncio.gather(*(client.execute("SET", f"k{i}", i) for i in range(300)))
        replies = await asyncio.gather(*(client.execute("GET", f"k{i}") for i in range(300)))
        assert replies == [str(i).encode() for i in range(300)]
    finally:
        await client.close()
        redis.stop()


async def test_after_a_redis_restart_it_reconnects_and_loads_its_script_again(tmp_path):
    redis = OwnRedis(tmp_path)
    client = PipelinedRedis(redis.url)
    script = Script(client, "return redis.call('INCR', KEYS[1])")
    try:
        assert await script(keys=["n"], args=[]) == 1
        redis.stop()
        with pytest.raises(RedisUnavailable):
            await script(keys=["n"], args=[])
        redis.start()
        for _ in range(50):  # the first calls after a failure fail fast for a second
            try:
                assert await script(keys=["n"], args=[]) == 1  # a new server: no key, no script
                break
            except RedisUnavailable:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("no reconnection")
    finally:
        await client.close()
        redis.stop()

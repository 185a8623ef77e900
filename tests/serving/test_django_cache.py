"""serving.django_cache: one redis client per pool and one set of pools per process, writes on the
first server, and the default cache's client handed out through a public method (core.cache)."""

import redis
from django.core.cache import cache

from core.cache import redis_client
from serving.django_cache import FastRedisCache


def port(client) -> int:
    return client.connection_pool.connection_kwargs["port"]


def test_every_cache_object_of_the_process_with_the_same_servers_shares_one_client_per_pool():
    one = FastRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_timeout": 2}})
    other = FastRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_timeout": 2}})
    assert one.redis_client() is other.redis_client() is one.redis_client()


def test_writes_go_to_the_first_server_and_reads_to_the_others():
    """As Django's own backend does (a client kept per index once paired a write with a replica's pool)."""
    cache_ = FastRedisCache(["redis://127.0.0.1:11/0", "redis://127.0.0.1:12/0"], {})
    assert port(cache_.redis_client(write=True)) == 11
    assert port(cache_.redis_client(write=False)) == 12
    assert port(cache_._cache.get_client(write=True)) == 11  # what every cache write goes through


def test_core_hands_out_the_default_caches_client():
    client = redis_client()
    assert isinstance(client, redis.Redis) and client is cache.redis_client(write=True)
    cache.set("serving-test", 7)
    assert cache.get("serving-test") == 7 and client.exists(cache.make_key("serving-test")) == 1

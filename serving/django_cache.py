"""Django's Redis cache backend, with one redis client per connection pool and one set of
pools per process.

The stock backend builds a new `redis.Redis` object for every cache call, which costs more
than the network round trip itself (about 0.4 ms with redis-py 8). A client is thread-safe
(it borrows a connection from the pool for each command), so one per pool is enough.

Django also keeps cache objects per async context, and every WebSocket consumer is one: with
the stock backend each live connection opened pools and Redis connections of its own (and
paid redis-py's connection set-up on its first cache read). The pools are shared here by every
cache object of the process with the same servers and options.

`FastRedisCache.redis_client()` is the public way to its redis-py client, for what the cache API
lacks (pipelines, scripts, sorted sets): core.cache.redis_client() calls it, so nothing outside
this package reaches into the cache.

What it relies on in Django's backend beyond its documented API (tests/serving/test_pins.py checks
each): RedisCache's `_class` (the client class it builds), `_servers`, `_options` and its `_cache`
cached property, which every cache method goes through; RedisCacheClient's
`__init__(servers, **options)`, `get_client(key=None, *, write=False)`, `_get_connection_pool(write)`
(the pool of the server to use, created once and kept) and `_client` (redis.Redis).
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

WRITTEN_FOR = {"django": "5.2", "redis": "8.1"}

_clients: dict[tuple, RedisCacheClient] = {}
_lock = threading.Lock()


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}  # id(pool) -> its client (Django keeps each pool for good)

    def get_client(self, key=None, *, write=False):
        # The stock get_client with the client kept: Django picks the pool (the first server for a
        # write, another for a read when there are several).
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class FastRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    @cached_property
    def _cache(self) -> RedisCacheClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = self._class(self._servers, **self._options)
        return client

    def redis_client(self, *, write: bool = True):
        """The redis-py client of this cache (of its first server when `write`), shared by the process."""
        return self._cache.get_client(write=write)

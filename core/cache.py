"""The default cache's redis-py client, for what the cache API lacks (pipelines, scripts, sorted
sets).

The cache backend (settings.CACHES) is serving.django_cache.FastRedisCache, which hands its client
out through a public method; core itself reaches into no library's internals (serving/ does, and
pins them)."""


def redis_client():
    """The default cache's redis-py client (one per process, thread-safe)."""
    from django.core.cache import cache

    return cache.redis_client()

"""Leases: one holder at a time across every process, held in Redis.

The price writes of one exchange take the lease `poll:<exchange>`, whoever makes them (the poller
task, the ingest process's feed writer, a resync), so two writers never interleave their reads of
the newest stored price with their writes (an older price stored after a newer one, or the latest
price going back in time)."""

import logging
import threading
import time
import uuid

from django.core.cache import cache

from cryptosite.cache import redis_client

log = logging.getLogger(__name__)

# Delete or extend the lock only while it still holds this run's token: a run that outlived its
# lease must not release or keep the lock another run has taken since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Lease:
    """A Redis key holding a token of this holder's own, on a short lease renewed while the work
    goes on. A worker killed mid-run (kill -9, out of memory) leaves a lock that lapses within one
    lease, not one that blocks the work for as long as the longest run could take.

    `wait`: seconds to keep trying for a lease another holder has (0: give up at once).
    `renew`: False for work far shorter than the lease (a feed write), which needs no renewing."""

    def __init__(self, name: str, lease: float, wait: float = 0.0, renew: bool = True):
        self.key, self.lease = cache.make_key(f"lock:{name}"), max(1, int(lease))
        self.token = uuid.uuid4().hex
        self.wait, self.renew = wait, renew
        self.done = threading.Event()

    def __enter__(self) -> bool:
        deadline = time.monotonic() + self.wait
        while True:
            self.held = bool(redis_client().set(self.key, self.token, nx=True, ex=self.lease))
            if self.held or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if self.held and self.renew:
            threading.Thread(target=self._renew, daemon=True, name=f"lease {self.key}").start()
        return self.held

    def _renew(self) -> None:
        while not self.done.wait(self.lease / 3):
            try:
                redis_client().eval(_RENEW, 1, self.key, self.token, self.lease * 1000)
            except Exception:  # Redis away: the lease lapses, as it would for a dead worker
                log.warning("could not renew %s", self.key)

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.held:
            redis_client().eval(_RELEASE, 1, self.key, self.token)

"""Leases: one holder at a time across every process, held in Redis.

The price writes of one exchange take the lease `poll:<exchange>`, whoever makes them (the poller
task, the ingest process's feed writer, a resync), so two writers never interleave their reads of
the newest stored price with their writes (an older price stored after a newer one, or the latest
price going back in time)."""

import logging
import threading

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from core import keys
from core.cache import redis_client

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # between tries while waiting for a lease another holder has


class Lease:
    """redis-py's Lock (a key holding this holder's own token, released or extended only while it
    still holds that token) on a short lease renewed while the work goes on. A worker killed mid-run
    (kill -9, out of memory) leaves a lock that lapses within one lease, not one that blocks the
    work for as long as the longest run could take.

    `wait`: seconds to keep trying for a lease another holder has (0: give up at once).
    `renew`: False for work far shorter than the lease (a feed write), which needs no renewing."""

    def __init__(self, name: str, lease: float, wait: float = 0.0, renew: bool = True):
        self.key, self.lease = keys.lock_key(name), max(1, int(lease))
        self.wait, self.renew = wait, renew
        self.done = threading.Event()
        self.held = False

    def __enter__(self) -> bool:
        # Not thread-local: the token is renewed from a thread of its own.
        self.lock = Lock(redis_client(), self.key, timeout=self.lease, sleep=POLL_SECONDS, thread_local=False)
        self.held = self.lock.acquire(blocking=self.wait > 0, blocking_timeout=self.wait)
        if self.held and self.renew:
            threading.Thread(target=self._renew, daemon=True, name=f"lease {self.key}").start()
        return self.held

    def _renew(self) -> None:
        while not self.done.wait(self.lease / 3):
            try:
                self.lock.reacquire()  # back to a full lease, only while the token is still ours
            except LockNotOwnedError:
                log.warning("lost %s: its lease lapsed and another holder took it", self.key)
                return
            except Exception:  # Redis away: the lease lapses, as it would for a dead worker
                log.warning("could not renew %s", self.key)

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.held:
            try:
                self.lock.release()
            except LockNotOwnedError:  # a run that outlived its lease leaves the next holder's lock alone
                pass

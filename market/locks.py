"""Leases: one holder at a time across every process, held in Redis.

The price writes of one exchange take the lease `poll:<exchange>`, whoever makes them (the poller
task, the ingest process's feed writer, a resync), so two writers never interleave their reads of
the newest stored price with their writes (an older price stored after a newer one, or the latest
price going back in time).

A Holding is the other kind: a lease held for as long as its holder is healthy (an exchange's live
feed, the scheduler), renewed by the holder's own loop, whose token names the holder."""

import logging
import threading
import time
import uuid

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from core import keys
from core.cache import redis_client
from core.instance import instance_name

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


class Holding:
    """A lease held by one process for as long as it stays healthy: taken without waiting, renewed
    by its holder (`renew()` about every lease/6), lapsing `lease` seconds after the last renewal
    when the holder dies. The token starts with the holder's INSTANCE_NAME (`holders()` reads it).

    A holder cut off from Redis stops holding (`renew()` answers False) once half the lease has
    passed without a renewal: well before the lease lapses and another process may take it."""

    def __init__(self, name: str, lease: float, owner: str | None = None):
        self.name, self.key, self.lease = name, keys.lock_key(name), lease
        self.owner = owner or instance_name()
        self.lock: Lock | None = None
        self.renewed = 0.0  # time.monotonic() of the last renewal

    @property
    def held(self) -> bool:
        return self.lock is not None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (never waits)."""
        lock = Lock(redis_client(), self.key, timeout=self.lease, thread_local=False)
        if lock.acquire(blocking=False, token=f"{self.owner}{TOKEN_SEPARATOR}{uuid.uuid4().hex}"):
            self.lock, self.renewed = lock, time.monotonic()
            return True
        return False

    def renew(self) -> bool:
        """Back to a full lease; False once it is no longer ours (another process took it, or
        Redis could not be reached for half the lease)."""
        if self.lock is None:
            return False
        try:
            self.lock.reacquire()
        except LockNotOwnedError:
            # Lapsed (a stall longer than the lease) or gone with a restarted Redis: ours again only
            # if nobody else has taken it meanwhile.
            self.lock = None
            if self.acquire():
                return True
            log.warning("lost %s: another process holds it", self.key)
            return False
        except Exception as exc:  # Redis away: hold on until half the lease has gone by unrenewed
            if time.monotonic() - self.renewed < self.lease / 2:
                return True
            log.warning("gave up %s: Redis unreachable for %.1fs (%s)", self.key, time.monotonic() - self.renewed, exc)
            self.lock = None
            return False
        self.renewed = time.monotonic()
        return True

    def release(self) -> None:
        lock, self.lock = self.lock, None
        if lock is not None:
            try:
                lock.release()
            except Exception:  # taken over, or Redis away: the lease lapses by itself
                pass


TOKEN_SEPARATOR = "|"


def holders(names: list[str]) -> dict[str, str | None]:
    """Who holds each of the named Holdings now (its INSTANCE_NAME; None: nobody), in one round
    trip."""
    if not names:
        return {}
    tokens = redis_client().mget([keys.lock_key(name) for name in names])
    return {name: None if token is None else token.decode(errors="replace").split(TOKEN_SEPARATOR)[0]
            for name, token in zip(names, tokens)}

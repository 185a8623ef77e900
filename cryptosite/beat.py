"""Exactly one Celery beat sends, however many run (one per host, say): the scheduler sends only
while it holds the scheduler's lease in Redis (market.locks.Holding, renewed at every tick). The
others stand by, looking at the lease every SCHEDULER_LEASE_SECONDS / 4, and the first to find it
lapsed takes over: within 1.25 x SCHEDULER_LEASE_SECONDS of its holder's death (by default inside
one poll interval). The schedule itself is market.schedule's; the polls' run-time schedule (each exchange's
interval, editable in the admin) is read by the dispatcher it sends every second.

settings.CELERY_BEAT_SCHEDULER names this class."""

import logging
import time

from celery.beat import PersistentScheduler
from django.conf import settings

from core import keys
from market.locks import Holding

log = logging.getLogger(__name__)


class LeasedScheduler(PersistentScheduler):
    """Celery's own scheduler (its schedule kept in a local file), sending only while it holds
    the scheduler's lease."""

    def __init__(self, *args, **kwargs):
        self.holding = Holding(keys.SCHEDULER_HOLDING, settings.SCHEDULER_LEASE_SECONDS)
        self.look_every = settings.SCHEDULER_LEASE_SECONDS / 4
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self.hold():
            return self.look_every
        return min(super().tick(*args, **kwargs), self.look_every)

    def hold(self) -> bool:
        """Whether this beat is the one that sends: renew the lease it holds, or try to take a free
        one."""
        if self.holding.held:
            if time.monotonic() - self.holding.renewed < self.look_every or self.holding.renew():
                return True
            log.warning("beat: lost the scheduler's lease; standing by")
            return False
        try:
            if self.holding.acquire():
                log.info("beat: holding the scheduler's lease; sending the schedule")
                return True
        except Exception as exc:  # Redis away: stand by until it is back
            log.debug("beat: scheduler's lease unreadable: %s", exc)
        return False

    def close(self) -> None:
        self.holding.release()  # a standby takes over at its next look, not a lease later
        super().close()

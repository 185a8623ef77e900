"""The threads Django's synchronous code runs on, one pool per process: every request through
serving.django_handler and every database call of a WebSocket consumer, each thread keeping its
database connection (CONN_MAX_AGE). WEB_THREADS of them."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

_executor: ThreadPoolExecutor | None = None
_workers = 0


def executor() -> ThreadPoolExecutor:
    global _executor, _workers
    if _executor is None:
        _workers = settings.WEB_THREADS
        _executor = ThreadPoolExecutor(max_workers=_workers, thread_name_prefix="django")
    return _executor


def close_connections() -> None:
    """Every pool thread closes its database connections (so that a test database can be dropped,
    or before a fork). Each job waits for the others, so each lands on a thread of its own."""
    if _executor is None:
        return
    workers = _workers
    barrier = threading.Barrier(workers)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=30)

    for job in [_executor.submit(close) for _ in range(workers)]:
        job.result()

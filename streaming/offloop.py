"""Slow reads on the web threads' pool, off the event loop and off Channels' database thread."""

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from core import threads


def off_loop(fn: Callable) -> Callable[..., Awaitable]:
    """A slow read (an exchange's order book, indicators over their warm-up candles) on the web
    threads' pool, not on the one database thread Channels gives every consumer of the process
    (where it would hold up everyone's subscribe)."""

    def call(*args):
        close_old_connections()
        try:
            return fn(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False, executor=threads.executor())

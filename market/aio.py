"""Running the async exchange adapters from sync code (views, Celery tasks)."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .exchanges.http import close_client

T = TypeVar("T")


async def _closing(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    finally:
        await close_client()


def run(awaitable: Awaitable[T]) -> T:
    """Run on a fresh event loop; the HTTP client it opened is closed with it."""
    return asyncio.run(_closing(awaitable))

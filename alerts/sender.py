"""The one HTTP seam of webhooks: one POST under a total deadline.

httpx's timeouts bound each network operation, not a request: a receiver that sends one byte of
its headers or body every second never trips them and would hold a worker's thread for as long as
it likes. So a try runs on an event loop of its own under asyncio.timeout (wall clock, whatever
the receiver does), and its answer is streamed: the status and the first EXCERPT_BYTES are kept for
the log, the rest is never read (the connection is closed instead).
"""

import asyncio
from dataclasses import dataclass

import httpx

EXCERPT_BYTES = 256


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str  # the body's first EXCERPT_BYTES, as text


class DeadlineExceeded(Exception):
    """The receiver did not answer (status and excerpt) within the try's deadline."""


def post(url: str, body: bytes, headers: dict, extensions: dict, deadline: float) -> Answer:
    """POST `body` to `url`; raises DeadlineExceeded, or httpx.HTTPError (refused, reset...)."""
    return asyncio.run(_post(url, body, headers, extensions, deadline))


async def _post(url: str, body: bytes, headers: dict, extensions: dict, deadline: float) -> Answer:
    try:
        async with asyncio.timeout(deadline), httpx.AsyncClient(timeout=deadline) as client:
            # identity: a compressed body is not inflated (the excerpt is all that is read of it).
            headers = {"Accept-Encoding": "identity", **headers}
            async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
                kept = bytearray()
                async for chunk in response.aiter_raw():
                    kept += chunk[: EXCERPT_BYTES - len(kept)]
                    if len(kept) >= EXCERPT_BYTES:
                        break
                return Answer(response.status_code, kept.decode("utf-8", "replace"))
    except TimeoutError:
        raise DeadlineExceeded(f"Timeout: no answer within {deadline:g} s") from None

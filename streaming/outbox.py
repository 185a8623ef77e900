"""What one /ws connection writes to its client, in order, and the sent-messages metric."""

import asyncio
from collections import deque

from core import metrics
from serving.uvicorn_ws import SEND_NOW


class _SentCounter:
    """The sent-messages metric in batches: one write of the shared (multi-process) counter per
    half second, not one per message, which was a sixth of the cost of a fan-out."""

    def __init__(self):
        self.count = 0
        self.loop = None  # the loop a flush is scheduled on (a test's loop may close before it runs)

    def add(self) -> None:
        self.count += 1
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            loop.call_later(0.5, self.flush)

    def flush(self) -> None:
        count, self.count, self.loop = self.count, 0, None
        metrics.WS_SENT.inc(count)


_sent = _SentCounter()


class Outbox:
    def __init__(self, scope: dict, send):
        self.base_send = send
        # uvicorn's connection (serving.uvicorn_ws) takes a message with a plain call;
        # any other server gets them in order through an outbox.
        self.send_now = scope.get("extensions", {}).get(SEND_NOW)
        self.waiting: deque[dict] = deque()
        self.draining: asyncio.Task | None = None

    def emit(self, text: str | None, close: dict | None = None) -> None:
        """Hand a message (or the close) to the client, after everything emitted before it."""
        if text is not None:
            _sent.add()
        if self.send_now is not None and not self.waiting and close is None:
            self.send_now(text)
            return
        self.waiting.append(close or {"type": "websocket.send", "text": text})
        if self.draining is None or self.draining.done():
            self.draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self.waiting:
            message = self.waiting.popleft()
            if message["type"] == "websocket.send" and self.send_now is not None:
                self.send_now(message["text"])
            else:
                await self.base_send(message)

    def cancel(self) -> None:
        if self.draining is not None:
            self.draining.cancel()

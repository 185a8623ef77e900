"""daphne's HTTP request, with its body counted as it arrives.

Twisted reads a whole request body (into a temporary file past 100 KB) before daphne hands the
request to the application, so the application's own count (serving.django_handler) comes too late
there: a client declaring, or streaming, 200 MiB would be read and stored in full first. Here a
declared Content-Length over MAX_BODY_BYTES, or a body (chunked or not) the moment it passes the
limit, is answered 413 with the contract's body and the connection closed; nothing more is read.

What it relies on (tests/serving/test_pins.py checks each; tests/security/test_request_bodies.py
checks the behaviour against a real daphne): Twisted's `Request.gotLength(length)` and
`Request.handleContentChunk(data)` (the channel's calls into a request, "not intended for users"),
`request.channel.transport`, daphne's `WebRequest.process()`, and daphne's HTTPFactory building its
requests from the module-level name `daphne.http_protocol.WebRequest` at each connection (so
replacing that name before the server starts is enough).
"""

# ruff: noqa: N802  (Twisted names these methods)
import json
import logging

import daphne.http_protocol
from daphne.http_protocol import WebRequest
from django.conf import settings

from core.errors import error_body

from .django_handler import too_large_message

WRITTEN_FOR = {"daphne": "4.2", "twisted": "26.10"}

log = logging.getLogger(__name__)


def refusal(status: int, reason: bytes, message: str) -> bytes:
    body = json.dumps(error_body(message)).encode()
    head = (f"HTTP/1.1 {status} ".encode() + reason + b"\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
    return head + body


class BoundedWebRequest(WebRequest):
    refused = False
    received = 0

    def gotLength(self, length):
        if length is not None and length > settings.MAX_BODY_BYTES:
            self._refuse()
            length = 0  # nothing of it will be kept
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return
        self.received += len(data)
        if self.received > settings.MAX_BODY_BYTES:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        """Answer 413 at once and close: the request never reaches the application."""
        if self.refused:
            return
        self.refused = True
        transport = self.channel.transport
        transport.write(refusal(413, b"Content Too Large", too_large_message()))
        transport.loseConnection()  # stops reading now; what was written is sent first

    def process(self):
        if self.refused:  # the body ended before the close took effect
            return None
        return super().process()


def install() -> None:
    """Make daphne build these requests (before the server starts)."""
    daphne.http_protocol.WebRequest = BoundedWebRequest

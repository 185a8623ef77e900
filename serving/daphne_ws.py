"""daphne's WebSocket connection, with what the contract needs from it: a bound on what one
WebSocket may have waiting for a client that does not read, and the close codes 1008 and 1009.

daphne hands every message to Twisted, which writes what the socket takes and buffers the rest
in memory without limit: a client that stops reading (a stalled phone, a paused tab, a script
that only writes) would grow the server by every update sent its way. Here each WebSocket is
the push producer of its own connection. Twisted pauses it once the connection already holds
more than its write buffer (64 KiB) and resumes it when that has drained; what is sent while
paused is counted, and past WS_MAX_BUFFERED_BYTES the connection is dropped. The kernel's own
send buffer for the socket is capped at WS_SEND_BUFFER_BYTES too (Linux would otherwise grow it
to megabytes per connection), so that one connection's backlog is bounded end to end. A close frame
could not reach a client that does not read, so the TCP connection is aborted; the consumer
gets its websocket.disconnect (code 1006) and leaves its groups as for any other disconnect.

autobahn lets an application close only with 1000 or 3000-4999 and turns anything else into an
error (daphne then closes with 1011); RFC 6455 gives endpoints 1008 (policy violation) and 1009
(message too big) as well, and the contract closes with them, so those are sent as they are, with
the close's reason (which daphne would drop).

What it relies on beyond the libraries' documented API (tests/serving/test_pins.py checks each):
daphne's WebSocketFactory building its connections from its `protocol` class attribute, and
daphne's WebSocketProtocol sending every message through autobahn's `sendMessage(payload,
isBinary)` and closing through `handle_reply` and `serverClose(code)`, with its `client_addr`;
autobahn's `sendCloseFrame(code, reasonUtf8, isReply)`, `sendClose(code, reason)`,
`dropConnection(abort)`, `state` and `STATE_OPEN`; Twisted's transports holding the producer that
did the upgrade as `producer` (TCP) or `_producer` (TLS), `registerProducer(producer, streaming)`,
`unregisterProducer()` and `getHandle()`.
"""

# ruff: noqa: N802, N803  (Twisted and autobahn name these methods)
import logging
import socket

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

from core import metrics

WRITTEN_FOR = {"daphne": "4.2", "autobahn": "26.11", "twisted": "26.10"}

log = logging.getLogger(__name__)


class BoundedWebSocketProtocol(WebSocketProtocol):
    paused = False
    held_bytes = 0
    dropped = False

    def connectionMade(self):
        super().connectionMade()
        transport = self.transport
        # The HTTP channel that did the upgrade is still registered as the connection's producer
        # (`producer` on a TCP transport, `_producer` on a TLS wrapper).
        if getattr(transport, "producer", None) is not None or getattr(transport, "_producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)
        if settings.WS_SEND_BUFFER_BYTES:
            try:
                transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.WS_SEND_BUFFER_BYTES)
            except (AttributeError, OSError):  # not a plain socket (TLS wrapper, UNIX pipe): keep the OS's
                pass

    # IPushProducer: Twisted's word on the client's reading.
    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self.held_bytes = 0

    def stopProducing(self):
        self.paused = False

    def sendMessage(self, payload, isBinary=False, *args, **kwargs):
        if self.dropped:
            return
        if self.paused:
            self.held_bytes += len(payload)
            if self.held_bytes > settings.WS_MAX_BUFFERED_BYTES:
                self.dropped = True
                log.warning("dropping WebSocket %s: it reads too slowly (%d bytes waiting)", self.client_addr, self.held_bytes)
                metrics.WS_DROPPED.inc()
                self.dropConnection(abort=True)
                return
        super().sendMessage(payload, isBinary, *args, **kwargs)

    def handle_reply(self, message):
        # daphne drops a close's reason; a refused connection is told why (streaming.admission).
        if message.get("type") == "websocket.close" and message.get("reason") and self.state == self.STATE_OPEN:
            return self.serverClose(message.get("code"), message["reason"])
        return super().handle_reply(message)

    def serverClose(self, code=None, reason=None):
        if code in RFC_CLOSE_CODES:
            # At most 123 bytes fit in a close frame; cut on a character's boundary.
            data = reason.encode()[:123].decode(errors="ignore").encode() if reason else None
            self.sendCloseFrame(code=code, reasonUtf8=data, isReply=False)
        elif reason:
            self.sendClose(code=1000 if code is None else code, reason=reason)
        else:
            super().serverClose(code)


RFC_CLOSE_CODES = frozenset({1008, 1009, 1011})


def install() -> None:
    """Make daphne's WebSocket factory build these connections (before the server starts)."""
    WebSocketFactory.protocol = BoundedWebSocketProtocol

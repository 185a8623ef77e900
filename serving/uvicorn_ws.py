"""uvicorn's WebSocket connection (websockets' sans-I/O protocol), with what the contract needs
from it: a bound on what one WebSocket may have waiting for a client that does not read.

uvicorn makes a consumer's send wait while the connection's write buffer is over its high-water
mark, so one client that stops reading would stall its consumer and fill its inbox. Here a send
never waits: it is written to the connection's buffer, and a connection holding more than
WS_MAX_BUFFERED_BYTES that the client has not taken is aborted (a close frame could not reach a
client that does not read). The consumer gets its websocket.disconnect (1006) and leaves its
groups as for any other disconnect. The kernel's send buffer for the socket is capped at
WS_SEND_BUFFER_BYTES too (Linux would otherwise grow it to megabytes per connection), so that one
connection's backlog is bounded end to end. The close codes 1008 and 1009 are sent as they are.
serving/daphne_ws.py does the same for daphne.

A text message is written with a plain call (SEND_NOW in the scope's extensions; streaming.outbox
uses it), its frame built here: with 5,000 subscribers a fan-out's p99 went from 2.16x to 1.34x
the bare `websockets` server's with this, the channel layer's reader (serving.channel_layer) and a
message rendered once per process (docs/benchmarks.md, "Streaming").

What it relies on in uvicorn's WebSocketsSansIOProtocol beyond its documented API
(tests/serving/test_pins.py checks each): the methods `connection_made(transport)`,
`handle_connect(event)` (which builds `scope`, with an `extensions` dict) and `send(message)`, the
attributes `transport`, `client`, `conn` (websockets' ServerProtocol), `handshake_initiated`,
`handshake_complete`, `initial_response`, `close_sent` and `disconnected`; in websockets,
`conn.send_text`, `conn.send_binary`, `conn.data_to_send()`, `conn.state`, `conn.extensions`, and
a server's text frame being the one built here when no extension is negotiated.
"""

import logging
import socket

from django.conf import settings
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

from core import metrics

WRITTEN_FOR = {"uvicorn": "0.54", "websockets": "17.4"}

SEND_NOW = "cryptosite.websocket.send_now"

log = logging.getLogger(__name__)


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if settings.WS_SEND_BUFFER_BYTES:
            try:
                transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.WS_SEND_BUFFER_BYTES)
            except (AttributeError, OSError):  # not a plain socket (TLS, UNIX pipe): keep the OS's
                pass

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and hasattr(self, "scope") and not self.close_sent:
            # The consumer writes its messages with this plain call (streaming.outbox), no await.
            self.scope["extensions"][SEND_NOW] = self.send_text_now

    async def send(self, message) -> None:
        if message["type"] != "websocket.send" or not self.handshake_complete or self.initial_response is not None:
            return await super().send(message)
        text = message.get("text")
        if text is not None:
            return self.send_text_now(text)
        if not self._writable():
            return
        try:
            self.conn.send_binary(message["bytes"])
        except InvalidState:
            return
        self.transport.write(b"".join(self.conn.data_to_send()))

    def _writable(self) -> bool:
        """Whether a message may be written now: False once closing, and after dropping a client
        that has more than WS_MAX_BUFFERED_BYTES waiting (the consumer then gets its disconnect)."""
        if self.disconnected or self.close_sent or self.transport.is_closing() or self.conn.state is not State.OPEN:
            return False
        held = self.transport.get_write_buffer_size()
        if held > settings.WS_MAX_BUFFERED_BYTES:
            log.warning("dropping WebSocket %s: it reads too slowly (%d bytes waiting)", self.client, held)
            metrics.WS_DROPPED.inc()
            self.close_sent = True
            self.transport.abort()
            return False
        return True

    def send_text_now(self, text: str) -> None:
        """One text message, written at once: the frame is built here (a server's frames are not
        masked; no extension is negotiated), which costs a fraction of the generic path."""
        if not self._writable():
            return
        if self.conn.extensions:
            self.conn.send_text(text.encode())
            self.transport.write(b"".join(self.conn.data_to_send()))
            return
        data = text.encode()
        size = len(data)
        if size < 126:
            header = bytes((0x81, size))
        elif size < 65536:
            header = b"\x81\x7e" + size.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + size.to_bytes(8, "big")
        self.transport.write(header + data)

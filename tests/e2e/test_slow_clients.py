"""A client that stops reading is dropped once its backlog passes WS_MAX_BUFFERED_BYTES, while a
client that reads gets every update: the server started as the stack starts it (cryptosite.serve:
uvicorn, the default, and daphne, the alternative), prices published through the real Redis
channel layer."""

import base64
import json
import os
import socket
import time
from decimal import Decimal

import pytest
from websockets.sync.client import connect

from market.ticks import StoredTick
from streaming.broadcast import publish
from tests.e2e.conftest import serving

pytestmark = pytest.mark.e2e

LIMIT = 64 * 1024


@pytest.fixture(params=["uvicorn", "daphne"])
def server(tmp_path, request):
    with serving(tmp_path, "--server", request.param, WS_MAX_BUFFERED_BYTES=str(LIMIT), WS_SEND_BUFFER_BYTES="16384") as (port, _proc):
        yield port


def frame(text: str) -> bytes:
    """One masked client text frame (payload under 126 bytes)."""
    payload, mask = text.encode(), os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def non_reader(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive window that subscribes to BTC and never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    sock.sendall(frame(json.dumps({"type": "subscribe", "symbol": "BTC"})))
    return sock


def ticks(start: int, count: int) -> list[StoredTick]:
    now = int(time.time() * 1000)
    return [StoredTick("binance", "BTC", Decimal(50000 + i), now + i, now + i) for i in range(start, start + count)]


def drained_until_closed(sock: socket.socket, seconds: float) -> tuple[int, bool]:
    """Read what the server had written before it gave up; (bytes read, closed by the server)."""
    sock.settimeout(seconds)
    total = 0
    try:
        while chunk := sock.recv(65536):
            total += len(chunk)
    except ConnectionResetError:
        return total, True
    except TimeoutError:
        return total, False
    return total, True


def test_a_client_that_stops_reading_is_dropped_and_a_reader_still_gets_every_update(server):
    slow = non_reader(server)
    with connect(f"ws://127.0.0.1:{server}/ws", max_size=None) as reader:
        assert json.loads(reader.recv(10))["type"] == "connected"
        reader.send(json.dumps({"type": "subscribe", "symbol": "BTC"}))
        assert json.loads(reader.recv(10))["type"] == "subscribed"
        time.sleep(0.5)  # both have joined the group

        sent, batch = 0, 100
        received = []
        deadline = time.monotonic() + 60
        # Publish at a pace the reader can follow until the server has held back well past the limit.
        while sent < 6_000 and time.monotonic() < deadline:
            publish(ticks=ticks(sent, batch))
            sent += batch
            while len(received) < sent - 500:
                received.append(json.loads(reader.recv(10)))
        while len(received) < sent:
            received.append(json.loads(reader.recv(10)))

        prices = [m["price"] for m in received if m["type"] == "price_update"]
        assert prices == [50000 + i for i in range(sent)]  # the reader lost nothing, in order
        seqs = [m["seq"] for m in received]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        written = sum(len(json.dumps(m)) for m in received)
        got, closed = drained_until_closed(slow, 15)
        assert closed, "the server kept a connection that had stopped reading"
        assert got < written / 2, f"the non-reader was sent {got} of {written} bytes"

        # The server is unharmed: the reader still gets what comes next.
        publish(ticks=ticks(sent, 1))
        assert json.loads(reader.recv(10))["price"] == 50000 + sent
    slow.close()

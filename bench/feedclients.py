"""N WebSocket subscribers that time each price they receive against the trade time it carries:
python -m bench.feedclients URL N SECONDS (ours|relay). Prints "ready", then one JSON line of
latencies in ms (receive time minus the exchange's trade time; same machine, same clock).

The clients are plain non-blocking sockets on one epoll, speaking just enough RFC 6455 (a
handshake, unmasked server frames, masked client frames, pong): a `websockets` client per socket
costs tens of microseconds of Python per message, so 1,000 of them on the server's own two cores
would time their own backlog, not the server. A message counts as received when epoll reports
its socket readable (the moment the subscriber's kernel holds it), so the client's own parsing
of the other sockets in the same batch is not charged to the server."""

import base64
import json
import os
import re
import select
import socket
import struct
import sys
import time
from urllib.parse import urlparse

from .common import raise_fd_limit

STAMP = {"ours": re.compile(rb'"type":\s*"price_update".*?"timestamp":\s*(\d+)'),
         "relay": re.compile(rb'"T":\s*(\d+)')}


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (a zero mask: the payload travels as it is)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def frames(buffer: bytearray):
    """(opcode, payload) of each complete server frame at the buffer's start, consumed."""
    while len(buffer) >= 2:
        length, at = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return
            length, at = struct.unpack_from("!H", buffer, 2)[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return
            length, at = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < at + length:
            return
        opcode = buffer[0] & 0x0F
        payload = bytes(buffer[at:at + length])
        del buffer[:at + length]
        yield opcode, payload


def connect(url: str) -> tuple[socket.socket, bytearray]:
    """A blocking handshake; returns the socket (then non-blocking) and what followed the headers."""
    parts = urlparse(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return sock, bytearray(rest)


def main(url: str, n: int, seconds: float, kind: str) -> None:
    stamp = STAMP[kind]
    sockets, buffers = {}, {}
    for i in range(n):
        sock, buffer = connect(url)
        if kind == "ours":
            while not any(True for _ in frames(buffer)):  # the welcome
                buffer += sock.recv(65536)
            sock.sendall(frame(json.dumps({"type": "subscribe", "symbol": "BTC", "source": "binance"}).encode()))
        sock.setblocking(False)
        sockets[sock.fileno()], buffers[sock.fileno()] = sock, buffer
        if i % 100 == 99:
            time.sleep(0.05)
    poller = select.epoll()
    for fd in sockets:
        poller.register(fd, select.EPOLLIN)
    print("ready", flush=True)
    latencies: list[float] = []
    measuring_from = time.time() + 1  # the subscribe acknowledgements and snapshots first
    end = time.monotonic() + seconds + 1
    while time.monotonic() < end:
        events = poller.poll(0.5)
        now = time.time() * 1000
        for fd, _ in events:
            sock, buffer = sockets[fd], buffers[fd]
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                poller.unregister(fd)
                continue
            buffer += chunk
            for opcode, payload in frames(buffer):
                if opcode == 9:
                    sock.send(frame(payload, 10))
                elif opcode == 1 and now / 1000 >= measuring_from:
                    found = stamp.search(payload)
                    if found:
                        latencies.append(now - int(found.group(1)))
    print(json.dumps(latencies), flush=True)
    for sock in sockets.values():
        sock.close()


if __name__ == "__main__":
    raise_fd_limit()
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])

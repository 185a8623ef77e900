"""Request bodies are counted as they arrive, on uvicorn and on daphne: over MAX_BODY_BYTES, declared
or chunked, the answer is 413 with the contract's body before the rest is read, and the connection
is closed. Spoken over a raw socket, as an attacker's client would: it sends only part of what it
declares and then waits for the answer."""

import json
import socket
import time

import pytest

from tests.e2e.conftest import serving

pytestmark = pytest.mark.e2e

LIMIT = 64 * 1024
SERVERS = {"uvicorn": ("--workers", "1"), "daphne": ("--server", "daphne")}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request, tmp_path_factory):
    with serving(tmp_path_factory.mktemp(request.param), *SERVERS[request.param], MAX_BODY_BYTES=str(LIMIT)) as (port, proc):
        yield port


def head(length_header: str) -> bytes:
    return (f"POST /api/sentiment/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{length_header}\r\n\r\n").encode()


def read_answer(sock: socket.socket, seconds: float = 10) -> tuple[int, dict, bytes]:
    """The response the server sent (status, headers, body), reading until it closes the connection
    or the body is complete."""
    sock.settimeout(seconds)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            top, _, body = data.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in top.decode().split("\r\n")[1:])
            length = {k.lower(): v for k, v in headers.items()}.get("content-length")
            if length is not None and len(body) >= int(length):
                break
    top, _, body = data.partition(b"\r\n\r\n")
    assert top, "no answer"
    lines = top.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket, seconds: float = 10) -> bool:
    """The server closed the connection: it reads no more of the body."""
    sock.settimeout(seconds)
    try:
        for _ in range(1000):
            sock.sendall(b"x" * 65536)
            time.sleep(0.01)
    except (BrokenPipeError, ConnectionResetError):
        return True
    except TimeoutError:  # the server stopped reading and the socket's buffers are full
        try:
            return sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True
    return False


def assert_413(status: int, headers: dict, body: bytes) -> None:
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    payload = json.loads(body)
    assert str(LIMIT) in payload["error"] and payload["timestamp"]


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(head(f"Content-Length: {200 * 1024 * 1024}"))
        assert_413(*read_answer(sock))
        assert closed_by_server(sock)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(head("Transfer-Encoding: chunked"))
        chunk = b"x" * 16384
        for _ in range(LIMIT // len(chunk) + 2):  # just past the limit; the body's end is never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert_413(*read_answer(sock))
        assert closed_by_server(sock)


def test_a_body_within_the_limit_is_served(server):
    body = json.dumps({"texts": ["Bitcoin is surging, very bullish"] * 100}).encode()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(head(f"Content-Length: {len(body)}") + body)
        status, _, answer = read_answer(sock)
    assert status == 200 and len(json.loads(answer)["results"]) == 100


def test_a_chunked_body_within_the_limit_is_served(server):
    body = json.dumps({"text": "Bitcoin is surging, very bullish"}).encode()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(head("Transfer-Encoding: chunked") + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        status, _, answer = read_answer(sock)
    assert status == 200 and json.loads(answer)["sentiment"] == "Bullish"

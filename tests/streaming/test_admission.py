"""The WebSocket admission's own behaviour when Redis cannot be reached: connections are let in
uncounted, as the HTTP rate limiter lets requests in (the counting itself is tested against the
real servers in tests/security/test_ws_caps.py)."""

import pytest
from channels.testing import WebsocketCommunicator

from cryptosite.stack import free_port
from streaming import admission


async def accepting_app(scope, receive, send):
    """The application behind the admission: accepts, says hello, ends at the disconnect."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest.fixture
def redis_away(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


async def test_admission_cannot_say_when_redis_is_away(redis_away):
    assert await admission.admit("198.51.100.7", "a-connection") is None
    await admission.close_connections()


async def test_a_connection_is_let_in_uncounted_when_redis_is_away(redis_away):
    ws = WebsocketCommunicator(admission.ConnectionLimiter(accepting_app), "/ws")
    connected, _ = await ws.connect()
    assert connected and await ws.receive_from() == "hello"
    await ws.disconnect()
    await admission.close_connections()

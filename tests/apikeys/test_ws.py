"""API keys on /ws: a header at the handshake, or an `auth` message first (browsers cannot set
headers); a wrong key gets an error, then the connection is closed with 4401."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from apikeys import services, usage
from cryptosite.asgi import application
from streaming.consumers import CLOSE_UNAUTHORIZED
from tests.apikeys.conftest import new_key

pytestmark = [pytest.mark.django_db(transaction=True)]

_opened: list[WebsocketCommunicator] = []


@pytest.fixture(autouse=True)
async def _close_everything():
    yield
    for ws in _opened:
        try:
            await ws.disconnect(timeout=5)
        except Exception:  # already closed by the server
            pass
    _opened.clear()
    await asyncio.wait_for(get_channel_layer().close_pools(), timeout=10)
    await sync_to_async(connections.close_all)()


async def open_ws(headers=()) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(application, "/ws", headers=list(headers))
    _opened.append(ws)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def refused(ws) -> None:
    error = await ws.receive_json_from()
    assert error["type"] == "error" and "Invalid API key" in error["error"]
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHORIZED}


@pytest.mark.parametrize("header", [b"authorization", b"x-api-key"])
async def test_a_good_key_in_a_header_is_announced_after_connected_and_its_use_counted(header):
    raw = await sync_to_async(new_key)("streamer", "pro")
    ws = await open_ws([(header, (b"Api-Key " if header == b"authorization" else b"") + raw.encode())])
    assert (await ws.receive_json_from())["type"] == "connected"
    assert (await ws.receive_json_from()) == {"type": "authenticated", "name": "streamer", "tier": "pro", "seq": 2}
    await ws.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await ws.receive_json_from())["type"] == "pong"
    prefix = raw.split(".")[0]
    assert (await sync_to_async(usage.requests_by_day)(prefix, 1))[0][1] == 1


@pytest.mark.parametrize("header,value", [(b"authorization", b"Api-Key nope.wrong"), (b"x-api-key", b"nope.wrong"),
                                          (b"x-api-key", b"")])
async def test_a_wrong_key_in_a_header_is_refused_before_connected(header, value):
    await refused(await open_ws([(header, value)]))


async def test_a_good_key_as_the_first_message_is_announced():
    raw = await sync_to_async(new_key)("browser")
    ws = await open_ws()
    assert (await ws.receive_json_from())["type"] == "connected"
    await ws.send_to(text_data=json.dumps({"type": "auth", "key": raw}))
    reply = await ws.receive_json_from()
    assert reply["type"] == "authenticated" and reply["name"] == "browser" and reply["tier"] == "standard"


async def test_a_wrong_or_revoked_key_as_a_message_ends_the_connection():
    raw = await sync_to_async(new_key)("gone")
    await sync_to_async(services.revoke_key)("gone")
    for key in ("nope.wrong", raw):
        ws = await open_ws()
        assert (await ws.receive_json_from())["type"] == "connected"
        await ws.send_to(text_data=json.dumps({"type": "auth", "key": key}))
        await refused(ws)


async def test_an_auth_message_without_a_key_is_an_error_and_the_connection_stays():
    ws = await open_ws()
    await ws.receive_json_from()
    await ws.send_to(text_data=json.dumps({"type": "auth"}))
    assert (await ws.receive_json_from())["error"].startswith("Missing key")
    await ws.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await ws.receive_json_from())["type"] == "pong"


async def test_without_a_key_nothing_changes():
    ws = await open_ws()
    assert (await ws.receive_json_from())["type"] == "connected"
    await ws.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await ws.receive_json_from())["type"] == "pong"


async def test_an_open_connection_is_closed_once_its_key_is_revoked(monkeypatch):
    from streaming import consumers

    monkeypatch.setattr(consumers, "KEY_CHECK_SECONDS", 0.2)
    raw = await sync_to_async(new_key)("revoked-later")
    ws = await open_ws([(b"x-api-key", raw.encode())])
    assert (await ws.receive_json_from())["type"] == "connected"
    assert (await ws.receive_json_from())["type"] == "authenticated"
    await asyncio.sleep(0.5)  # checked again meanwhile, still good: nothing is sent
    assert await ws.receive_nothing(timeout=0.1)
    await sync_to_async(services.revoke_key)("revoked-later")
    await refused(ws)

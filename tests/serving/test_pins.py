"""Each module of serving/ relies on internals of the libraries it names in WRITTEN_FOR. These tests
fail loudly, naming the module to check again, when an upgrade moves what it relies on: the installed
versions are the ones it was written for, and every internal it uses (its docstring lists them) is
still there with the shape it uses, checked concretely (some against the suite's real Redis)."""

import asyncio
import importlib
import inspect
import io
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from cryptosite.stack import BASE_DIR
from serving import checks

SEAMS = checks.seams()
PINS = [(module, library, pinned) for module in SEAMS for library, pinned in checks.written_for(module).items()]


def relies_on(module: str) -> str:
    """The paragraph of the module's docstring that lists what it relies on."""
    paragraphs = importlib.import_module(f"serving.{module}").__doc__.split("\n\n")
    return next((p for p in paragraphs if p.startswith("What it relies on")), "")


def params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def calls(function, *names: str) -> bool:
    """Whether the function's own code names each of these (attributes, methods, globals)."""
    return set(names) <= set(function.__code__.co_names)


def test_every_serving_module_pins_its_libraries_and_lists_what_it_relies_on():
    assert SEAMS == ["ccxt_client", "channel_layer", "daphne_http", "daphne_ws", "django_cache", "django_handler", "uvicorn_ws"], (
        "a serving module was added or removed: pin it (WRITTEN_FOR), list what it relies on in its docstring, and test that here")
    for module in SEAMS:
        imported = importlib.import_module(f"serving.{module}")
        assert imported.WRITTEN_FOR, f"serving.{module} names no library in WRITTEN_FOR"
        assert checks.written_for(module) == imported.WRITTEN_FOR  # what the system check reads without importing it
        assert relies_on(module), f"serving.{module}'s docstring does not say what it relies on"


@pytest.mark.parametrize(("module", "library", "pinned"), PINS, ids=[f"{module}-{library}" for module, library, _ in PINS])
def test_the_installed_library_is_the_version_the_module_was_written_for(module, library, pinned):
    installed = checks.installed(library)
    assert installed == pinned, (
        f"serving.{module} was written for {library} {pinned}, but {installed} is installed: check again what "
        f"serving/{module}.py relies on (below; the tests of this file check each), then update its WRITTEN_FOR.\n\n"
        f"{relies_on(module)}")


# --- serving.django_handler: Django's ASGIHandler -------------------------------------------------


class TestDjangoHandler:
    def test_asgi_handlers_init_only_loads_the_async_middleware_which_the_threaded_handler_loads_synchronous(self):
        from django.core.handlers.asgi import ASGIHandler
        from django.core.handlers.base import BaseHandler

        from serving.django_handler import ThreadedASGIHandler

        assert ASGIHandler.__mro__[1] is BaseHandler  # super(ASGIHandler, self).__init__() is BaseHandler's
        assert params(ASGIHandler.__init__) == ["self"]
        assert calls(ASGIHandler.__init__, "load_middleware")
        assert params(BaseHandler.load_middleware) == ["self", "is_async"]
        # Skipping ASGIHandler.__init__ leaves nothing unset that its methods read.
        assert set(vars(ThreadedASGIHandler())) == set(vars(ASGIHandler()))
        assert not inspect.iscoroutinefunction(BaseHandler.get_response) and params(BaseHandler.get_response) == ["self", "request"]

    def test_create_request_builds_the_request_from_the_scope_and_body_as_handle_calls_it(self):
        from django.core.handlers.asgi import ASGIHandler

        from serving.django_handler import ThreadedASGIHandler

        assert params(ASGIHandler.create_request) == ["self", "scope", "body_file"]
        assert calls(ASGIHandler.handle, "create_request", "send_response")
        scope = {"type": "http", "method": "POST", "path": "/api/x", "root_path": "", "query_string": b"a=1",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
                 "client": ("198.51.100.7", 5000), "server": ("127.0.0.1", 8000)}
        request, error = ThreadedASGIHandler().create_request(scope, io.BytesIO(b"{}"))
        assert error is None
        assert (request.method, request.path, request.GET["a"], request.body) == ("POST", "/api/x", "1", b"{}")

    async def test_send_response_writes_a_response_as_asgi_messages(self):
        from django.core.handlers.asgi import ASGIHandler
        from django.http import HttpResponse

        from serving.django_handler import ThreadedASGIHandler

        assert inspect.iscoroutinefunction(ASGIHandler.send_response)
        assert params(ASGIHandler.send_response) == ["self", "response", "send"]
        sent = []

        async def send(message):
            sent.append(message)

        await ThreadedASGIHandler().send_response(HttpResponse(b"ok", status=201, headers={"Connection": "close"}), send)
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 201
        assert (b"Connection", b"close") in sent[0]["headers"]
        assert b"".join(m.get("body", b"") for m in sent[1:]) == b"ok" and not sent[-1].get("more_body")

    def test_get_script_prefix_reads_the_scopes_root_path(self, settings):
        from django.core.handlers.asgi import get_script_prefix

        settings.FORCE_SCRIPT_NAME = None
        assert params(get_script_prefix) == ["scope"]
        assert get_script_prefix({"root_path": "/prefix"}) == "/prefix"

    @pytest.mark.django_db  # request_finished's other receivers close stale database connections
    def test_a_response_closes_with_request_finished_sent_by_its_handler_class(self):
        from django.core.signals import request_finished
        from django.http import HttpResponse

        from serving.django_handler import ThreadedASGIHandler

        response = HttpResponse()
        assert "_handler_class" in vars(response)
        response._handler_class = ThreadedASGIHandler
        senders = []

        def receiver(sender, **kwargs):
            senders.append(sender)

        request_finished.connect(receiver)
        try:
            response.close()
        finally:
            request_finished.disconnect(receiver)
        assert senders == [ThreadedASGIHandler]


# --- serving.django_cache: Django's RedisCache and RedisCacheClient --------------------------------


class TestDjangoCache:
    def test_the_cache_builds_its_client_once_from_its_class_servers_and_options_and_uses_it_for_everything(self):
        from django.core.cache.backends.redis import RedisCache, RedisCacheClient
        from django.utils.functional import cached_property

        cache = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_timeout": 2}})
        assert (cache._class, cache._servers, cache._options) == (RedisCacheClient, ["redis://127.0.0.1:1/0"], {"socket_timeout": 2})
        assert isinstance(vars(RedisCache)["_cache"], cached_property)
        for method in ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear"):
            assert calls(getattr(RedisCache, method), "_cache"), method

    def test_the_client_hands_out_redis_clients_on_the_pool_of_the_server_to_use(self):
        import redis
        from django.core.cache.backends.redis import RedisCacheClient

        assert params(RedisCacheClient.__init__) == ["self", "servers", "serializer", "pool_class", "parser_class", "options"]
        get_client = inspect.signature(RedisCacheClient.get_client).parameters
        assert list(get_client) == ["self", "key", "write"] and get_client["write"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params(RedisCacheClient._get_connection_pool) == ["self", "write"]
        assert calls(RedisCacheClient.get_client, "_get_connection_pool", "_client")
        client = RedisCacheClient(["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"], socket_timeout=2)
        assert client._client is redis.Redis
        assert client._get_connection_pool(True) is client._get_connection_pool(True)  # created once, kept
        assert client._get_connection_pool(True).connection_kwargs["port"] == 1  # writes: the first server
        assert client._get_connection_pool(False).connection_kwargs["port"] == 2  # reads: the others


# --- serving.daphne_http: daphne's WebRequest, Twisted's Request ------------------------------------


class TestDaphneHttp:
    def test_daphnes_factory_builds_its_requests_from_the_module_level_name_at_each_connection(self, monkeypatch):
        from daphne import http_protocol

        from serving import daphne_http

        build = http_protocol.HTTPFactory.buildProtocol
        assert build.__globals__ is vars(http_protocol) and calls(build, "requestFactory", "WebRequest")
        monkeypatch.setattr(http_protocol, "WebRequest", http_protocol.WebRequest)  # put back after the test
        daphne_http.install()
        assert http_protocol.WebRequest is daphne_http.BoundedWebRequest

    def test_twisteds_channel_gives_a_request_the_declared_length_then_each_chunk_of_the_body(self):
        from twisted.web.http import HTTPChannel, Request

        assert params(Request.gotLength) == ["self", "length"]
        assert params(Request.handleContentChunk) == ["self", "data"]
        assert calls(HTTPChannel.allHeadersReceived, "gotLength")
        assert calls(HTTPChannel._maybeChooseTransferDecoder, "handleContentChunk")  # Content-Length and chunked alike

    def test_a_request_keeps_its_channel_and_daphnes_request_starts_the_application_in_process(self):
        from daphne.http_protocol import WebRequest
        from twisted.web.http import Request

        from serving.daphne_http import BoundedWebRequest

        assert BoundedWebRequest.__mro__[1:3] == (WebRequest, Request)
        assert "process" in vars(WebRequest) and params(WebRequest.process) == ["self"]
        channel = SimpleNamespace(transport=object(), getPeer=lambda: None, getHost=lambda: None)
        assert Request(channel).channel is channel


# --- serving.daphne_ws: daphne's WebSocketProtocol, autobahn, Twisted's producers ---------------------


class TestDaphneWs:
    def test_daphnes_factory_builds_its_connections_from_its_protocol_attribute(self, monkeypatch):
        from daphne.ws_protocol import WebSocketFactory

        from serving import daphne_ws

        monkeypatch.setattr(WebSocketFactory, "protocol", WebSocketFactory.protocol)  # put back after the test
        daphne_ws.install()
        built = WebSocketFactory(None, reactor=object()).buildProtocol(None)
        assert type(built) is daphne_ws.BoundedWebSocketProtocol

    def test_daphne_sends_every_message_through_send_message_and_closes_through_server_close(self):
        from daphne.ws_protocol import WebSocketProtocol

        assert calls(WebSocketProtocol.serverSend, "sendMessage")
        assert params(WebSocketProtocol.handle_reply) == ["self", "message"] and calls(WebSocketProtocol.handle_reply, "serverClose")
        assert params(WebSocketProtocol.serverClose) == ["self", "code"]
        assert calls(WebSocketProtocol.onConnect, "client_addr")

    def test_autobahns_calls_have_the_shape_the_module_uses(self):
        from autobahn.websocket.protocol import WebSocketProtocol as Autobahn
        from daphne.ws_protocol import WebSocketProtocol

        assert issubclass(WebSocketProtocol, Autobahn)
        assert params(Autobahn.sendMessage)[:3] == ["self", "payload", "isBinary"]
        assert params(Autobahn.sendCloseFrame) == ["self", "code", "reasonUtf8", "isReply"]
        assert params(Autobahn.sendClose) == ["self", "code", "reason"]
        assert params(Autobahn.dropConnection) == ["self", "abort"]
        assert isinstance(Autobahn.STATE_OPEN, int)

    def test_twisteds_transports_hold_one_producer_where_the_module_looks_for_it(self):
        from twisted.internet import abstract, tcp
        from twisted.internet.interfaces import IPushProducer
        from twisted.protocols.tls import TLSMemoryBIOProtocol
        from zope.interface.verify import verifyClass

        from serving.daphne_ws import BoundedWebSocketProtocol

        descriptor = abstract.FileDescriptor(reactor=SimpleNamespace())
        upgrade, websocket = SimpleNamespace(), SimpleNamespace()
        descriptor.registerProducer(upgrade, True)
        assert descriptor.producer is upgrade
        with pytest.raises(RuntimeError):  # why the upgrade's producer is unregistered first
            descriptor.registerProducer(websocket, True)
        descriptor.unregisterProducer()
        assert descriptor.producer is None
        assert issubclass(tcp.Connection, abstract.FileDescriptor) and params(tcp.Connection.getHandle) == ["self"]
        assert "_producer" in vars(TLSMemoryBIOProtocol) and TLSMemoryBIOProtocol._producer is None
        assert params(TLSMemoryBIOProtocol.registerProducer) == ["self", "producer", "streaming"]
        assert verifyClass(IPushProducer, BoundedWebSocketProtocol, tentative=True)  # pause, resume, stop


# --- serving.uvicorn_ws: uvicorn's WebSocketsSansIOProtocol, websockets' ServerProtocol --------------

HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class FakeTransport:
    """What uvicorn's protocol and the module call on an asyncio transport, recorded."""

    def __init__(self):
        self.written = bytearray()
        self.buffered = 0
        self.closing = self.aborted = False

    def get_extra_info(self, name, default=None):
        return {"peername": ("198.51.100.7", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.written += data

    def is_closing(self):
        return self.closing

    def get_write_buffer_size(self):
        return self.buffered

    def close(self):
        self.closing = True

    def abort(self):
        self.closing = self.aborted = True


@pytest.fixture
async def uvicorn_connection():
    """A BoundedWebSocketProtocol built by uvicorn's Config, after a real handshake, its application accepted."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from serving.uvicorn_ws import BoundedWebSocketProtocol

    accepted, release = asyncio.Event(), asyncio.Event()

    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        accepted.set()
        await release.wait()

    config = Config(app=app, ws=BoundedWebSocketProtocol, ws_per_message_deflate=False, proxy_headers=False,
                    lifespan="off", log_config=None)
    config.load()
    assert config.ws_protocol_class is BoundedWebSocketProtocol  # uvicorn.run(ws=<class>) builds these
    state = ServerState()
    protocol = config.ws_protocol_class(config, state, {}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(accepted.wait(), 5)
    assert transport.written.startswith(b"HTTP/1.1 101")
    transport.written.clear()
    yield protocol, transport
    release.set()
    protocol.connection_lost(None)
    await asyncio.wait_for(asyncio.gather(*state.tasks, return_exceptions=True), 5)


def server_frames(send: str, data: bytes) -> bytes:
    """The frames websockets' own server protocol writes for one message."""
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    conn = ServerProtocol(state=State.OPEN)
    getattr(conn, send)(data)
    return b"".join(conn.data_to_send())


class TestUvicornWs:
    def test_uvicorns_protocol_has_the_methods_the_module_overrides(self):
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

        assert params(WebSocketsSansIOProtocol.connection_made) == ["self", "transport"]
        assert params(WebSocketsSansIOProtocol.handle_connect) == ["self", "event"]
        assert params(WebSocketsSansIOProtocol.send) == ["self", "message"]
        assert inspect.iscoroutinefunction(WebSocketsSansIOProtocol.send)

    async def test_after_the_handshake_the_connection_has_the_state_the_module_reads(self, uvicorn_connection):
        from websockets.protocol import State
        from websockets.server import ServerProtocol

        from serving.uvicorn_ws import SEND_NOW

        protocol, transport = uvicorn_connection
        assert protocol.transport is transport and protocol.client == ("198.51.100.7", 5000)
        assert protocol.handshake_initiated and protocol.handshake_complete and protocol.initial_response is None
        assert protocol.close_sent is False and protocol.disconnected is False
        assert isinstance(protocol.conn, ServerProtocol) and protocol.conn.state is State.OPEN
        assert protocol.conn.extensions == []  # no compression negotiated: the module may build the frames
        assert protocol.scope["extensions"][SEND_NOW] == protocol.send_text_now

    @pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
    async def test_a_text_frame_built_here_is_the_one_websockets_builds(self, uvicorn_connection, size):
        protocol, transport = uvicorn_connection
        text = "é" * (size // 2) + "x" * (size % 2)
        protocol.send_text_now(text)
        assert bytes(transport.written) == server_frames("send_text", text.encode())

    async def test_text_and_binary_messages_sent_through_send_are_websockets_frames(self, uvicorn_connection):
        protocol, transport = uvicorn_connection
        await protocol.send({"type": "websocket.send", "bytes": b"\x00\x01"})
        assert bytes(transport.written) == server_frames("send_binary", b"\x00\x01")
        transport.written.clear()
        await protocol.send({"type": "websocket.send", "text": "hi"})
        assert bytes(transport.written) == server_frames("send_text", b"hi")

    async def test_a_client_with_too_much_waiting_is_dropped_through_the_transport(self, uvicorn_connection, settings):
        protocol, transport = uvicorn_connection
        transport.buffered = settings.WS_MAX_BUFFERED_BYTES + 1
        protocol.send_text_now("x")
        assert transport.aborted and protocol.close_sent and not transport.written


# --- serving.channel_layer: channels-redis's RedisChannelLayer and its layout in Redis --------------


@pytest.fixture
async def plain_layer():
    """channels-redis's own layer on the suite's Redis: the layout the module's Lua script writes into."""
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[{"address": os.environ["REDIS_URL"]}], prefix=f"test-pins-{os.getpid()}", capacity=2)
    yield layer
    await layer.flush()
    await layer.close_pools()


class TestChannelLayer:
    def test_the_layer_has_the_attributes_and_methods_the_module_uses(self):
        from channels_redis.core import RedisChannelLayer

        from serving.channel_layer import ProcessFanoutChannelLayer

        layer = ProcessFanoutChannelLayer(hosts=[{"address": "redis://127.0.0.1:1/0", "max_connections": 3}], prefix="p")
        assert layer.hosts == [{"address": "redis://127.0.0.1:1/0", "max_connections": 3}] and layer.ring_size == 1
        assert (layer.prefix, layer.capacity, layer.expiry, layer.group_expiry) == ("p", 100, 60, 86400)
        assert not layer.channel_capacity  # none configured: the module's own group_send applies
        shapes = {
            "connection": ["self", "index"], "consistent_hash": ["self", "value"], "create_pool": ["self", "index"],
            "receive_single": ["self", "channel"], "serialize": ["self", "message"], "_group_key": ["self", "group"],
            "send": ["self", "channel", "message"], "receive": ["self", "channel"], "group_add": ["self", "group", "channel"],
            "group_discard": ["self", "group", "channel"], "group_send": ["self", "group", "message"], "flush": ["self"],
            "close_pools": ["self"], "non_local_name": ["self", "name"], "require_valid_group_name": ["self", "name"],
            "require_valid_channel_name": ["self", "name", "receive"],
        }
        for name, shape in shapes.items():
            assert params(getattr(RedisChannelLayer, name)) == shape, name
        for name in ("send", "receive", "receive_single", "group_add", "group_discard", "group_send", "flush", "close_pools"):
            assert inspect.iscoroutinefunction(getattr(RedisChannelLayer, name)), name
        assert layer.non_local_name("specific.abc!def") == "specific.abc!"

    def test_a_bounded_queue_drops_its_oldest_item_when_full(self):
        from channels_redis.core import BoundedQueue

        queue = BoundedQueue(2)
        for item in (1, 2, 3):
            queue.put_nowait(item)
        assert [queue.get_nowait(), queue.get_nowait()] == [2, 3]

    async def test_a_group_is_a_sorted_set_of_its_members_scored_by_when_they_joined(self, plain_layer):
        await plain_layer.group_add("pins", "specific.abc!def")
        redis, key = plain_layer.connection(0), plain_layer._group_key("pins")
        assert key == f"{plain_layer.prefix}:group:pins".encode()
        assert await redis.type(key) == b"zset"
        assert abs(await redis.zscore(key, "specific.abc!def") - time.time()) < 5
        assert 0 < await redis.ttl(key) <= plain_layer.group_expiry

    async def test_a_process_local_channels_messages_wait_in_a_sorted_set_named_after_its_process(self, plain_layer):
        from channels.exceptions import ChannelFull

        channel = await plain_layer.new_channel()
        process = plain_layer.non_local_name(channel)
        await plain_layer.send(channel, {"type": "sent"})
        redis, key = plain_layer.connection(0), plain_layer.prefix + process
        assert await redis.type(key) == b"zset" and await redis.zcard(key) == 1
        (_, score), = await redis.zrange(key, 0, -1, withscores=True)
        assert abs(score - time.time()) < 5 and 0 < await redis.ttl(key) <= plain_layer.expiry
        # Added as the module's Lua script adds a group message: the serialized message, scored now.
        await redis.zadd(key, {plain_layer.serialize({"type": "fanned-out"}): time.time()})
        with pytest.raises(ChannelFull):  # an inbox holds `capacity` messages, as the script counts them
            await plain_layer.send(channel, {"type": "one too many"})
        assert await plain_layer.receive_single(process) == (channel, {"type": "sent"})
        assert await plain_layer.receive_single(process) == (process, {"type": "fanned-out"})


class TestCcxtClient:
    """serving.ccxt_client replaces three methods of ccxt's async base class, and ccxt must still call them;
    its ccxt.pro client reads when a WebSocket last heard a frame and probes it as ccxt.pro's keepalive does."""

    def test_the_base_class_has_the_methods_it_replaces_with_their_shapes(self):
        from ccxt.async_support.base.exchange import Exchange

        assert params(Exchange.fetch) == ["self", "url", "method", "headers", "body"]
        assert params(Exchange.throttle) == ["self", "cost"]
        assert params(Exchange.load_markets) == ["self", "reload", "params"]
        assert calls(Exchange.load_markets, "markets_loading", "ensure_future")
        assert params(Exchange.handle_errors)[:10] == ["self", "statusCode", "statusText", "url", "method",
                                                      "responseHeaders", "responseBody", "response",
                                                      "requestHeaders", "requestBody"]
        assert params(Exchange.parse_order_book_bid_ask) == ["self", "bidask", "priceKey", "amountKey", "countOrIdKey"]
        # fetch2 throttles (when enableRateLimit) and then fetches; parse_order_book_bids_asks reads every level
        # through parse_order_book_bid_ask; parse_number calls `number`.
        assert calls(Exchange.fetch2, "throttle", "fetch")
        assert calls(Exchange.parse_order_book_bids_asks, "parse_order_book_bid_ask")
        assert calls(Exchange.parse_number, "number")

    def test_a_client_asks_its_transport_and_keeps_the_printed_digits(self):
        from serving.ccxt_client import client_class

        asked, paced = [], []

        class Transport:
            async def get(self, url, headers):
                asked.append(url)
                if "books" in url:
                    body = '{"code":"0","msg":"","data":[{"asks":[["10000.10","1.50","0","1"],["9999.90","2","0","1"]],' \
                           '"bids":[["9999.80","0.010","0","1"]],"ts":"1700000000000"}]}'
                    return 200, "OK", {}, body
                return 200, "OK", {}, '{"code":"0","msg":"","data":[{"instId":"BTC-USDT","last":"42000.123456789012",' \
                                      '"ts":"1700000000000"}]}'

            async def pace(self, seconds):
                paced.append(seconds)

            def refused(self, status):
                return RuntimeError(status)

        client = client_class("okx")({"enableRateLimit": True})
        client.transport = Transport()
        client.set_markets([{"id": "BTC-USDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC",
                             "quoteId": "USDT", "type": "spot", "spot": True, "active": True, "precision": {},
                             "limits": {}, "info": {}}])
        ticker = asyncio.run(client.fetch_ticker("BTC/USDT"))
        book = asyncio.run(client.fetch_order_book("BTC/USDT", 5))  # another event loop: no future of the first
        assert client.markets_loading is None  # markets set by us are never loaded through a loop-bound future
        assert ticker["last"] == "42000.123456789012"
        assert book["asks"][0] == ["9999.90", "2"] and book["bids"] == [["9999.80", "0.010"]]
        assert len(asked) == 2 and all(url.startswith("https://") for url in asked)
        assert len(paced) == 2 and all(seconds > 0 for seconds in paced)

    def test_ccxt_pros_base_classes_have_what_the_live_client_uses_with_their_shapes(self):
        import ccxt.pro
        from aiohttp import ClientWebSocketResponse
        from ccxt.async_support.base.exchange import Exchange
        from ccxt.async_support.base.ws.client import Client

        assert ccxt.pro.Exchange is Exchange and "okx" in ccxt.pro.exchanges and "bitbank" not in ccxt.pro.exchanges
        assert issubclass(ccxt.pro.okx, Exchange)
        # The exchange's WebSockets, {url: Client}, filled by client(url), which hands each its `ping`.
        assert isinstance(Exchange.clients, dict) and params(Exchange.client) == ["self", "url"]
        assert calls(Exchange.client, "clients", "Client")
        assert Exchange.ping is None and params(ccxt.pro.okx.ping) == ["self", "client"]
        # ccxt's keepalive: the exchange's message through send, else the connection's protocol ping.
        assert calls(Client.ping_loop, "ping", "send", "connection")
        assert inspect.iscoroutinefunction(Client.send) and params(Client.send) == ["self", "message"]
        assert Client.connection is None and params(Client.open) == ["self", "session", "backoff_delay"]
        assert calls(Client.open, "create_connection", "connection") and calls(Client.create_connection, "ws_connect")
        assert inspect.iscoroutinefunction(ClientWebSocketResponse.ping)
        # Every frame received goes through handle_message, which notes when.
        assert calls(Client.handle_message, "last_message_at") and calls(Client.receive_loop, "handle_message")
        # The documented options set: a watch answers with the cache (newUpdates off), of tradesLimit trades.
        assert Exchange.newUpdates is True
        assert calls(ccxt.pro.okx.watch_trades_for_symbols, "newUpdates") and calls(ccxt.pro.okx.handle_trades, "ArrayCache")

    async def test_a_live_client_hears_every_frame_and_probes_as_ccxt_pros_keepalive_does(self):
        import ccxt.pro
        from aiohttp import WSMsgType
        from ccxt.async_support.base.ws.client import Client

        from serving.ccxt_client import last_heard_ms, ping, pro_client, pro_client_class

        class Connection:  # the aiohttp WebSocket, recorded
            closed = False

            def __init__(self):
                self.sent, self.pings = [], 0

            async def send_str(self, text):
                self.sent.append(text)

            async def ping(self):
                self.pings += 1

            async def close(self):
                self.closed = True

        assert pro_client_class("bitbank") is None  # in ccxt, not in ccxt.pro
        for exchange_id, probe in (("okx", "ping"), ("bitstamp", None)):  # okx's own message; bitstamp has none
            client = pro_client(exchange_id, 7)
            assert type(client).__mro__[1] is getattr(ccxt.pro, exchange_id)
            assert (client.number, client.newUpdates, client.options["tradesLimit"]) == (str, False, 7)
            with pytest.raises(ccxt.pro.NotSupported):
                await client.fetch("https://example.invalid/api")
            try:
                ws = client.client("wss://example.invalid/ws")  # no connection until a watch connects it
                assert isinstance(ws, Client) and client.clients == {"wss://example.invalid/ws": ws}
                assert ws.last_message_at is None and last_heard_ms(client) == 0
                before = int(time.time() * 1000)
                ws.handle_message(SimpleNamespace(type=WSMsgType.PONG, data=b""))
                assert before <= last_heard_ms(client) <= int(time.time() * 1000)
                ws.connection = Connection()
                assert await ping(client) == []
                assert (ws.connection.sent, ws.connection.pings) == (([probe], 0) if probe else ([], 1))
                ws.connection = None  # a socket not connected (yet): its probe fails, and says so
                assert len(await ping(client)) == 1
            finally:
                client.timeout_on_exit = 0
                await client.close()

    def test_okx_keeps_trades_limit_trades_of_a_market(self):
        from serving.ccxt_client import pro_client

        client = pro_client("okx", 3)
        client.set_markets([{"id": "BTC-USDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC",
                             "quoteId": "USDT", "type": "spot", "spot": True, "active": True, "precision": {},
                             "limits": {}, "info": {}}])
        resolved = []
        ws = SimpleNamespace(resolve=lambda stored, message_hash: resolved.append((list(stored), message_hash)))
        trades = [{"instId": "BTC-USDT", "tradeId": str(n), "px": f"4200{n}.10", "sz": "0.5", "side": "buy",
                   "ts": str(1700000000000 + n)} for n in range(5)]
        client.handle_trades(ws, {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": trades})
        stored, message_hash = resolved[-1]
        assert message_hash == "trades:BTC/USDT"
        assert [t["id"] for t in stored] == ["2", "3", "4"] and stored[-1]["price"] == "42004.10"

    def test_ccxts_api_urls_are_strings_or_dicts_of_them_and_rebasing_keeps_each_path(self):
        import ccxt

        from serving.ccxt_client import api_urls, rebase_urls

        for exchange_id in ("okx", "bybit", "bitstamp"):
            urls = getattr(ccxt, exchange_id)().urls["api"]
            found = api_urls(urls)
            assert found and all(url.split("://")[0] in ("http", "https", "ws", "wss") for url in found), exchange_id
            moved = api_urls(rebase_urls(urls, "http://127.0.0.1:9/x"))
            paths = ["".join(url.split("://", 1)[1].partition("/")[1:]) for url in found]
            assert moved == [f"http://127.0.0.1:9/x{path}" for path in paths], exchange_id
        bitstamp = {"public": "https://www.bitstamp.net/api", "ws": {"spot": "wss://ws.bitstamp.net"}, "n": 1}
        assert rebase_urls(bitstamp, "http://h:1") == {"public": "http://h:1/api", "ws": {"spot": "http://h:1"}, "n": 1}


class TestPrometheusFiles:
    """core.metrics names each process's metrics files by host name and pid through
    prometheus-client's MultiProcessValue(process_identifier=...): containers sharing one metrics
    volume (compose) each have a pid 1."""

    def test_files_are_named_by_host_and_pid_and_added_up(self, tmp_path):
        script = (
            "import os, socket\n"
            "from core import metrics\n"
            "metrics.FEED_MESSAGES.labels('binance').inc(3)\n"
            "print(socket.gethostname(), os.getpid())\n"
        )
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        for _ in range(2):  # two processes, as two containers' would be
            out = subprocess.run([sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True,
                                 check=True).stdout.split()
        host, pid = out
        names = sorted(p.name for p in tmp_path.iterdir())
        assert f"counter_{host.replace('_', '-')}-{pid}.db" in names, names
        exposition = subprocess.run(
            [sys.executable, "-c", "from core import metrics; print(metrics.exposition()[0].decode())"],
            env=env, cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
        assert 'cryptosite_feed_messages_total{exchange="binance"} 6.0' in exposition

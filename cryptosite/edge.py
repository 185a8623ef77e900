"""The ASGI edge: the hot reads answered without Django's request machinery.

`GET /api/market/price` (one exchange), `/prices`, `/coins` and `/api/market/ohlc` answer the same
bytes until their data changes; market.documents keeps those bytes in Redis. Here one Redis round
trip counts the request against the client's rate limit and fetches the document; the answer
carries exactly the headers Django's middleware would have set (tests/api/test_edge.py compares
them). Every other request, and any of these the edge cannot answer plainly (no document, a bad
parameter, a disallowed host, a redirect to HTTPS, an origin to check against a CORS list, a
request over its limit), goes on to Django, with the rate-limit count the edge already made.
A request with an API key is answered here only when apikeys.authentication.authenticate knows the
key without the database, before the round trip and again under the keys' version that round trip
read (cryptosite.ratelimit.KEYED_SCRIPT); a key it has not verified, or a wrong one, goes on to
Django, which verifies it or answers 401.
Every request's endpoint, status and time are counted here too (core.metrics).
"""

import asyncio
import logging
import time
import weakref
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from hiredis import ReplyError

from apikeys.authentication import AFTER_COUNT, InvalidKey, NotRemembered, authenticate
from apikeys.credentials import key_from_asgi
from core import metrics
from core.clientip import scope_client
from core.pipeline import PipelinedRedis, RedisStillDown, RedisUnavailable, Script
from core.ratelimit import KEYED_SCRIPT, SCRIPT, hit_for, rule_for
from market import documents, selectors
from market.domain.errors import MarketError
from market.domain.params import ohlc_params
from market.domain.symbols import price_market

from .ratelimit import SCOPE_KEY, SCOPE_KEYS_VERSION, hit_for_key

log = logging.getLogger(__name__)


def _price_document(query: dict) -> tuple[str, ...]:
    if query.get("symbol") in (None, "") or query.get("source") == "":
        return ()
    try:
        source, symbol = price_market(query.get("symbol"), query.get("source"), settings.EXCHANGES)
    except MarketError:
        return ()  # the view answers with the contract's error
    return () if source == "composite" else (documents.price_key(source, symbol),)


OHLC_PARAMETERS = ("symbol", "timeframe", "limit", "source", "start", "end")


def _ohlc_document(query: dict) -> tuple[str, ...]:
    if any(query.get(name) == "" for name in OHLC_PARAMETERS):
        return ()
    try:
        q = ohlc_params(query, settings.EXCHANGES)
    except MarketError:
        return ()
    first, last = selectors.candle_window(q["timeframe"], q["limit"], q["start"], q["end"], selectors.now_ms())
    return (documents.ohlc_key(q["source"], q["symbol"], q["timeframe"], first, last, q["limit"]),
            documents.candles_version_key(q["source"], q["symbol"], q["timeframe"]))


ROUTES = {
    "/api/market/price": _price_document,
    "/api/market/ohlc": _ohlc_document,
    "/prices": lambda query: (documents.prices_key(),),
    "/coins": lambda query: (documents.coins_key(),),
}


class _Redis:
    """One pipelined Redis connection and script per event loop (one loop per server process)."""

    _clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Script]" = weakref.WeakKeyDictionary()
    _keyed: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Script]" = weakref.WeakKeyDictionary()

    @classmethod
    def script(cls) -> Script:
        loop = asyncio.get_running_loop()
        script = cls._clients.get(loop)
        if script is None:
            script = cls._clients[loop] = Script(PipelinedRedis(settings.REDIS_URL), SCRIPT)
        return script

    @classmethod
    def keyed_script(cls) -> Script:
        """KEYED_SCRIPT, on the same connection."""
        loop = asyncio.get_running_loop()
        script = cls._keyed.get(loop)
        if script is None:
            script = cls._keyed[loop] = Script(cls.script().redis, KEYED_SCRIPT)
        return script

    @classmethod
    async def close(cls) -> None:
        loop = asyncio.get_running_loop()
        cls._keyed.pop(loop, None)
        script = cls._clients.pop(loop, None)
        if script is not None:
            await script.redis.close()


close_connections = _Redis.close


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _is_secure(scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, value = proxy
        return _header(scope, header.removeprefix("HTTP_").lower().replace("_", "-").encode()) == value
    return False


def _host_allowed(scope) -> bool:
    host = _header(scope, b"host")
    if not host:
        return False
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _headers(scope) -> list[tuple[bytes, bytes]] | None:
    """What Django's middleware would add to a 200 JSON answer of these views (SecurityMiddleware,
    XFrameOptionsMiddleware and FramingMiddleware, CorsMiddleware, DRF's Allow), or None when
    Django must decide: a host to refuse, a redirect to HTTPS, an origin to check against a list."""
    if not _host_allowed(scope):
        return None
    secure = _is_secure(scope)
    if settings.SECURE_SSL_REDIRECT and not secure:
        return None
    out = [
        (b"content-type", b"application/json"),
        (b"allow", b"GET, HEAD, OPTIONS"),
        (b"vary", b"origin"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
        (b"content-security-policy", b"frame-ancestors 'none'"),
    ]
    origin = _header(scope, b"origin")
    if origin:
        if not settings.CORS_ALLOW_ALL_ORIGINS:
            return None
        out.append((b"access-control-allow-origin", b"*"))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        out.append((b"referrer-policy", (policy if isinstance(policy, str) else ",".join(policy)).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    if secure and settings.SECURE_HSTS_SECONDS:
        sts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            sts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            sts += "; preload"
        out.append((b"strict-transport-security", sts.encode()))
    return out


class Edge:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_counted(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            route = ROUTES.get(scope["path"]) if scope["method"] == "GET" else None
            onward = scope if route is None else await self._answer(route, scope, send_counted)
            if onward is not None:
                await self.app(onward, receive, send_counted)
        finally:
            metrics.observe_request(scope["path"], scope["method"], status, time.perf_counter() - started)

    async def _answer(self, route, scope, send):
        """Send the stored document and return None; or return the scope Django gets on with."""
        headers = _headers(scope)
        if headers is None:
            return scope
        try:
            query = dict(parse_qsl(scope["query_string"].decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return scope
        raw_key = key_from_asgi(scope["headers"])
        if raw_key is None:
            ip = scope_client(scope)
            hit, script = hit_for(*rule_for("GET", scope["path"]), ip, route(query)), _Redis.script
        else:
            try:
                key = authenticate(raw_key, AFTER_COUNT, database=False)
            except (NotRemembered, InvalidKey):
                return scope  # Django verifies the key (a query, on its threads), or answers 401
            hit, script = hit_for_key(key, route(query)), _Redis.keyed_script
        try:
            reply = await script()(keys=hit.keys, args=hit.args)
        except (RedisUnavailable, ReplyError, OSError) as exc:
            if not isinstance(exc, RedisStillDown):  # once per failed attempt to connect, not per request
                log.warning("edge: Redis unavailable (%s); requests go to Django until it is back", exc)
            return scope
        usage = hit.usage(reply)
        if raw_key is None:
            body = reply[1] if len(reply) > 1 else None
        else:
            version, body = hit.version(reply), hit.body(reply)
            try:  # the key again, under the keys' version this count read
                authenticate(raw_key, version, database=False)
            except (NotRemembered, InvalidKey):  # the keys changed: Django verifies this one again
                body = None
            if usage.limited or body is None:  # Django answers, taking the key under this version
                return {**scope, SCOPE_KEY: usage, SCOPE_KEYS_VERSION: version}
        if usage.limited or body is None:
            return {**scope, SCOPE_KEY: usage}
        headers.append((b"content-length", str(len(body)).encode()))
        headers += [(name.lower().encode(), value.encode()) for name, value in usage.headers()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None

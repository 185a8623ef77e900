"""Which WebSocket origins are accepted.

Non-browser clients (the original README's `websockets` client) send no Origin and are
accepted; a browser's Origin must match ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS.
"""

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator as _ChannelsOriginValidator
from django.conf import settings
from django.http.request import validate_host


def origin_allowed(origin: str | None) -> bool:
    if origin is None:
        return True
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = urlparse(origin).hostname
    if not host:
        return False
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return validate_host(host, allowed) or validate_host(f"[{host}]", allowed)


class OriginValidator(_ChannelsOriginValidator):
    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin) -> bool:  # channels passes a parsed URL or None
        if parsed_origin is None:
            return True
        return origin_allowed(parsed_origin.geturl())

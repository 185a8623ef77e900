"""Cross-cutting HTTP behaviour: JSON errors everywhere, body size, framing."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.views import defaults
from redis.exceptions import RedisError

from core.clientip import is_local
from core.errors import error_response

log = logging.getLogger(__name__)

# Pages for people (HTML): their errors stay HTML.
HTML_PREFIXES = ("/admin", "/widgets", "/docs", "/redoc")
_MESSAGES = {404: "Not found", 405: "Method not allowed", 500: "Internal server error"}


def _wants_html(path: str) -> bool:
    return path.startswith(HTML_PREFIXES)


# Django's pages for an error, as DEBUG=false serves them (no URL list, no settings, no traceback).
_PLAIN_PAGES = {400: defaults.bad_request, 403: defaults.permission_denied, 404: defaults.page_not_found,
                500: defaults.server_error}


class LocalDebugPagesMiddleware:
    """With DEBUG on, Django's debug pages (every URL pattern, settings, tracebacks) go to this
    machine only: anyone else gets the page DEBUG=false would have served. Outermost, so it sees
    every error page the inner layers made."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not settings.DEBUG or response.status_code < 400:
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if is_local(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR")):
            return response
        status = response.status_code if response.status_code in _PLAIN_PAGES else 500 if response.status_code >= 500 else 400
        view = _PLAIN_PAGES[status]
        plain = view(request) if status == 500 else view(request, exception=None)
        plain.status_code = response.status_code
        return plain


class JsonErrorMiddleware:
    """Unknown paths, wrong methods and crashes answer with the contract's JSON body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        status = response.status_code
        if status in _MESSAGES and not _wants_html(request.path):
            content_type = response.get("Content-Type", "")
            if not content_type.startswith("application/json"):
                message = _MESSAGES[status]
                if status == 404:
                    message = f"Not found: {request.path}"
                new = error_response(status, message)
                if "Allow" in response:
                    new["Allow"] = response["Allow"]
                return new
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, f"Request body over the limit of {settings.MAX_BODY_BYTES} bytes")
        if _wants_html(request.path):
            return None
        if isinstance(exception, (RedisError, OperationalError, InterfaceError)):
            # A dependency that went away: the contract's 503, and the system recovers when it returns.
            which = "Redis" if isinstance(exception, RedisError) else "the database"
            log.warning("%s unavailable on %s: %s", which, request.path, exception)
            return error_response(503, f"Service unavailable: {which} cannot be reached")
        log.exception("Unhandled error on %s", request.path)
        return error_response(500, "Internal server error")


class FramingMiddleware:
    """Widgets may be framed by other sites (WIDGET_FRAME_ANCESTORS); nothing else may:
    everything else gets X-Frame-Options: DENY (Django's middleware) and frame-ancestors 'none'."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/widgets/") and request.path != "/widgets/":
            response.xframe_options_exempt = True
            response["Content-Security-Policy"] = widget_csp(settings.WIDGET_FRAME_ANCESTORS)
        elif "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response


def widget_csp(ancestors: str) -> str:
    # Strict for scripts (no inline script at all); the chart library sets inline styles, which
    # are allowed. Everything loads from this origin; the stream connects back here.
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; "
        f"frame-ancestors {ancestors}"
    )

"""Per-client-IP rate limiting, counted in the shared cache (Redis) so that every server
process spends one budget. The 429 body and headers are the original data server's."""

import ipaddress
import logging
import time

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .errors import error_response

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health", "/static/")


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting exactly NUM_PROXIES proxies in front of us."""
    remote = request.META.get("REMOTE_ADDR") or "0.0.0.0"
    proxies = settings.NUM_PROXIES
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _key(group: str, request: HttpRequest) -> str:
    return client_ip(request)


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(EXEMPT_PREFIXES) or request.path == "/favicon.ico":
            return self.get_response(request)
        # Password guessing gets a much smaller budget than reading market data.
        login = request.method == "POST" and request.path == "/admin/login/"
        group, rate = ("admin-login", settings.ADMIN_LOGIN_RATE_LIMIT) if login else ("http", settings.RATE_LIMIT)
        try:
            usage = get_usage(request, group=group, key=_key, rate=rate, increment=True)
        except Exception:  # the cache being down must not take the API down with it
            log.warning("rate limiter unavailable; request allowed", exc_info=True)
            return self.get_response(request)
        if usage is None:
            return self.get_response(request)
        remaining = max(0, usage["limit"] - usage["count"])
        reset = int(time.time()) + int(usage["time_left"])
        retry_after = max(1, int(usage["time_left"]))
        if usage["should_limit"]:
            response = error_response(
                429,
                "Rate limit exceeded",
                detail="Too many requests. Please try again later.",
                retry_after=retry_after,
            )
            response["Retry-After"] = str(retry_after)
        else:
            response = self.get_response(request)
        response["X-RateLimit-Limit"] = str(usage["limit"])
        response["X-RateLimit-Remaining"] = str(remaining)
        response["X-RateLimit-Reset"] = str(reset)
        return response

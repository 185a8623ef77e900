"""The one error shape of the public contract: {"error": "...", "timestamp": "..."}.

Views raise; this module turns what they raise into that body and its status.
"""

import logging
from datetime import UTC, datetime

from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

log = logging.getLogger(__name__)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def error_body(message: str, **extra: object) -> dict:
    return {"error": message, "timestamp": iso_now(), **extra}


def error_response(status: int, message: str, **extra: object) -> JsonResponse:
    return JsonResponse(error_body(message, **extra), status=status)


def _flatten(detail: object) -> str:
    """DRF error details (dicts and lists of messages) as one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _flatten(value)
            parts.append(text if field in ("non_field_errors", "detail") else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def drf_exception_handler(exc: Exception, context: dict) -> Response | None:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(exc, drf_exceptions.APIException):
        # Domain and exchange errors carry the contract's status themselves.
        return Response(error_body(str(exc)), status=status)
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return Response(error_body(str(exc.detail)), status=400)
    if isinstance(exc, drf_exceptions.APIException):
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if getattr(exc, "auth_header", None):  # set by DRF's APIView on a 401 (as its own handler reads it)
            headers["WWW-Authenticate"] = exc.auth_header
        return Response(error_body(_flatten(exc.detail)), status=exc.status_code, headers=headers)
    if isinstance(exc, Http404):
        return Response(error_body("Not found"), status=404)
    return None

"""JSON bodies are parsed whatever Content-Type the client sent.

The original data server's clients (curl -d, scripts) do not always set
`Content-Type: application/json`; they must keep working.
"""

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class BodyTooLarge(ParseError):
    status_code = 413


class LenientJSONParser(BaseParser):
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(settings.MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > settings.MAX_BODY_BYTES:
            raise BodyTooLarge(f"Request body over the limit of {settings.MAX_BODY_BYTES} bytes")
        if not raw.strip():
            raise ParseError("Malformed JSON: the request body is empty")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None

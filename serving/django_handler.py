"""Django under ASGI the way a threaded WSGI server runs it: one hop to a worker thread per
request, not one per middleware.

Django's own ASGIHandler runs an async middleware chain in which every synchronous hook (all of
Django's built-in middleware, DRF's views) is another `sync_to_async` hop, gives every request a
thread pool of its own (so a database connection of its own: CONN_MAX_AGE is never reused), and
starts a task per request to watch for a disconnect. Here the whole request (the signals that
close stale database connections, the middleware chain, the view) runs in one call on a fixed
pool of WEB_THREADS threads, each keeping its database connection; the event loop only reads
the body and writes the response. The hot reads never get here (cryptosite.edge); what this work
and the edge changed, measured, is in docs/benchmarks.md ("Reading them").

The body is counted as it arrives: a declared Content-Length over MAX_BODY_BYTES is answered 413
before any of it is read, and a chunked body the moment it passes the limit; the connection is then
closed, so the rest is never read. What is kept (at most the limit) stays in memory, never on disk.
(daphne reads a whole body before the application sees it: serving.daphne_http bounds it there.)

What it relies on in Django's handler, beyond its documented API (tests/serving/test_pins.py
checks each): ASGIHandler.__init__ is skipped (it only loads the middleware in async mode: the
synchronous chain is loaded instead), `create_request(scope, body_file)` and
`send_response(response, send)` are called as ASGIHandler's own `handle()` calls them, the
module's `get_script_prefix(scope)`, and `response._handler_class`, which a response's close()
sends request_finished with (Django's handlers set it the same way).
"""

import io

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from core.errors import error_response
from core.threads import executor

WRITTEN_FOR = {"django": "5.2"}


class BodyRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def too_large_message() -> str:
    return f"Request body over the limit of {settings.MAX_BODY_BYTES} bytes"


def declared_length(headers) -> int | None:
    """The Content-Length a request declares (None: none, as for a chunked body); BodyRefused when
    it is not a number or is over the limit."""
    values = [value for name, value in headers if name == b"content-length"]
    if not values:
        return None
    try:
        lengths = {int(value) for value in values}
    except ValueError:
        raise BodyRefused(400, "Invalid Content-Length header") from None
    if len(lengths) != 1 or min(lengths) < 0:
        raise BodyRefused(400, "Invalid Content-Length header")
    length = lengths.pop()
    if length > settings.MAX_BODY_BYTES:
        raise BodyRefused(413, too_large_message())
    return length


class ThreadedASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()
        self.load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            scope, body_file = await self.read_counted_body(scope, receive)
        except RequestAborted:
            return
        except BodyRefused as refused:
            response = error_response(refused.status, str(refused))
            response["Connection"] = "close"  # the rest of the body is never read
            response["Content-Length"] = str(len(response.content))
            await self.send_response(response, send)
            return
        set_script_prefix(get_script_prefix(scope))
        response = await sync_to_async(self._respond, thread_sensitive=False, executor=executor())(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:
            await sync_to_async(self._finish, thread_sensitive=False, executor=executor())(response, body_file)

    @staticmethod
    async def read_counted_body(scope, receive) -> tuple[dict, io.BytesIO]:
        """The body, counted as it arrives, and the scope Django gets: a chunked body's length is
        declared there once known (DRF reads a request without Content-Length as having no body)."""
        declared = declared_length(scope["headers"])
        limit, size, body = settings.MAX_BODY_BYTES, 0, io.BytesIO()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyRefused(413, too_large_message())
            body.write(chunk)
            if not message.get("more_body", False):
                break
        body.seek(0)
        if declared is None and size:
            headers = [(name, value) for name, value in scope["headers"] if name != b"transfer-encoding"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}
        return scope, body

    def _respond(self, scope, body_file):
        signals.request_started.send(sender=self.__class__, scope=scope)  # closes stale DB connections
        request, error = self.create_request(scope, body_file)
        if request is None:
            return error
        response = self.get_response(request)
        response._handler_class = self.__class__
        return response

    @staticmethod
    def _finish(response, body_file) -> None:
        response.close()  # request_finished: this thread's connections are checked again
        body_file.close()

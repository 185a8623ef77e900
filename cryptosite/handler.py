"""Django under ASGI the way a threaded WSGI server runs it: one hop to a worker thread per
request, not one per middleware.

Django's own ASGIHandler runs an async middleware chain in which every synchronous hook (all of
Django's built-in middleware, DRF's views) is another `sync_to_async` hop, gives every request a
thread pool of its own (so a database connection of its own: CONN_MAX_AGE is never reused), and
starts a task per request to watch for a disconnect. Here the whole request (the signals that
close stale database connections, the middleware chain, the view) runs in one call on a fixed
pool of WEB_THREADS threads, each keeping its database connection; the event loop only reads
the body and writes the response. The hot reads never get here (cryptosite.edge).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.urls import set_script_prefix

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.WEB_THREADS, thread_name_prefix="django")
    return _executor


def close_connections() -> None:
    """Every pool thread closes its database connections (so that a test database can be dropped,
    or before a fork). Each job waits for the others, so each lands on a thread of its own."""
    if _executor is None:
        return
    workers = _executor._max_workers
    barrier = threading.Barrier(workers)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=30)

    for job in [_executor.submit(close) for _ in range(workers)]:
        job.result()


class ThreadedASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()
        self.load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        response = await sync_to_async(self._respond, thread_sensitive=False, executor=executor())(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:
            await sync_to_async(self._finish, thread_sensitive=False, executor=executor())(response, body_file)

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

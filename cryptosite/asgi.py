"""ASGI entry point: HTTP through the edge (the hot reads) and Django, WebSocket through Channels.

Django is set up before the consumers are imported, so they can use the ORM and settings.
The sentiment model is loaded here, before the first request, and a file that is not a model
stops the process with the reason.
"""

import os

import django
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from sentiment.serving import problem  # noqa: E402
from serving.django_handler import ThreadedASGIHandler  # noqa: E402
from streaming.admission import ConnectionLimiter  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402
from streaming.security import OriginValidator  # noqa: E402

from .edge import Edge  # noqa: E402

if reason := problem():
    raise ImproperlyConfigured(f"Sentiment model: {reason}")

application = ProtocolTypeRouter(
    {
        "http": Edge(ThreadedASGIHandler()),
        # Every handshake is counted (the rate limit, the connections per address), then checked.
        "websocket": ConnectionLimiter(OriginValidator(URLRouter(websocket_urlpatterns))),
    }
)

"""System checks of the WebSocket settings this app reads (run at start, before serving), and
serving's check of its pinned library versions (serving has no app of its own to register it)."""

from django.conf import settings
from django.core.checks import Error, register

import serving.checks  # noqa: F401  (registers serving.W001)


@register()
def connection_cap_settings(app_configs, **kwargs):
    errors = []
    if settings.WS_MAX_CONNECTIONS_PER_IP < 0:
        errors.append(Error("WS_MAX_CONNECTIONS_PER_IP must be 0 (no cap) or more", id="streaming.E001"))
    # Renewed every third of it: under a second would be renewals all the time; Redis keys' lives
    # are whole seconds.
    if settings.WS_CONNECTION_LEASE_SECONDS < 1:
        errors.append(Error("WS_CONNECTION_LEASE_SECONDS must be 1 or more", hint="e.g. 60", id="streaming.E002"))
    return errors

"""The name of this process among every process of the deployment (INSTANCE_NAME): what /health
says holds a feed or the scheduler, and what /metrics labels a held feed with."""

import os
import socket

from django.conf import settings


def instance_name() -> str:
    """INSTANCE_NAME, else the host name and the process id (read when asked: a forked child is
    named for itself)."""
    return settings.INSTANCE_NAME or f"{socket.gethostname()}-{os.getpid()}"

"""A /ws connection's API key: checked when it is given, and again while the connection is open.

The key comes in the handshake's headers or in an `auth` message (streaming.protocol); it is
checked by apikeys.authentication.authenticate, the rule REST and the edge use, on Channels'
database thread.
"""

import logging

from channels.db import database_sync_to_async

from apikeys import services as api_keys
from apikeys.authentication import InvalidKey
from apikeys.authentication import authenticate as authenticate_key
from apikeys.selectors import Key

from .protocol import CLOSE_UNAUTHORIZED, CLOSE_UNAVAILABLE

log = logging.getLogger(__name__)


class KeyRefused(Exception):
    """A key that ends the connection: the message to send, then the close code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


async def authenticate(raw: str) -> Key:
    """The key a client gave (its use counted); KeyRefused when it is wrong or cannot be checked."""
    try:
        return await database_sync_to_async(api_keys.use_key)(raw)
    except InvalidKey:
        raise KeyRefused("Invalid API key: wrong, revoked or expired", CLOSE_UNAUTHORIZED) from None
    except Exception as exc:  # the database away (KeysUnavailable): the client may retry
        log.warning("API key check of a /ws connection failed: %s", exc)
        raise KeyRefused("Service unavailable: the API key cannot be checked now", CLOSE_UNAVAILABLE) from None


async def still_valid(raw: str) -> bool:
    """Whether an open connection's key still holds (a revoke ends the connection). True when it
    cannot be checked now: it is asked again at the next check."""
    try:
        await database_sync_to_async(authenticate_key)(raw)
    except InvalidKey:
        return False
    except Exception as exc:  # the database away: asked again at the next check
        log.warning("API key check of a /ws connection failed: %s", exc)
    return True

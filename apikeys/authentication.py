"""The one rule that turns a presented API key into its Key, for every way in: the rate limiter's
middleware and the ASGI edge (cryptosite.ratelimit, cryptosite.edge), /ws (streaming.auth), and
DRF's views (ApiKeyAuthentication below, which takes the middleware's answer).

A key is verified against the database once (apikeys.selectors.verify) and the verdict is
remembered in this process. Whether a remembered verdict may answer depends on what the caller
knows of the keys' version in Redis, which every create, edit, revoke and delete moves on
(apikeys.services.keys_changed):

- a version (read now, or by the rate limiter's round trip): the verdict answers if it was reached
  under that version, else the database is asked again;
- None, Redis could not say: a verdict answers for TRUST_SECONDS, then the database is asked;
- AFTER_COUNT: the rate limiter has to know the key (its tier) before its round trip, which reads
  the version at no extra cost; the verdict answers now, and the caller asks again with the version
  its count read before it serves anything. A verdict never answers after MAX_TRUST_SECONDS.

A key that needs the database where none may be asked (the edge, on its event loop) raises
NotRemembered: the request goes on to Django, which asks.
"""

import enum
import logging

from django.db import InterfaceError, OperationalError
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import selectors, usage
from .credentials import key_from_meta
from .selectors import Key

log = logging.getLogger(__name__)


class InvalidKey(Exception):
    """A wrong, revoked or expired key: the contract's 401 (never served as anonymous)."""

    status = 401
    message = "Invalid API key"
    detail = "The API key is wrong, revoked or expired."

    def __init__(self):
        super().__init__(self.message)


class KeysUnavailable(Exception):
    """The database cannot be reached, so the key cannot be checked: the contract's 503."""

    status = 503
    message = "Service unavailable: the database cannot be reached"

    def __init__(self):
        super().__init__(self.message)


class NotRemembered(Exception):
    """Only the database could answer, and the caller may not ask it (database=False)."""


class Pending(enum.Enum):
    """What a caller knows of the keys' version when it has no value to give."""

    READ_NOW = "read now"  # the rule reads it (one Redis GET)
    AFTER_COUNT = "after count"  # the caller's rate-limit round trip reads it, and it asks again with it


READ_NOW = Pending.READ_NOW
AFTER_COUNT = Pending.AFTER_COUNT


def current_version() -> str | None:
    """The keys' version in Redis, or None when Redis cannot say."""
    try:
        return usage.version()
    except Exception as exc:  # Redis away: a recent verdict, or the database
        log.debug("keys' version unavailable: %s", exc)
        return None


def authenticate(raw: str, version: str | None | Pending = READ_NOW, *, database: bool = True) -> Key:
    """The Key `raw` is, else InvalidKey; KeysUnavailable when the database cannot be reached;
    NotRemembered when it would have to be asked and `database` is False. `version`: the keys'
    version as the caller knows it (see the module's docstring)."""
    if version is READ_NOW:
        version = current_version()
    verdict = selectors.remembered(raw)  # None: never seen, or remembered too long
    # Whether it answers: under AFTER_COUNT, yes (the caller asks again with the version its count
    # reads); while Redis cannot say, a recent one; else one reached under this very version.
    if verdict is None or not (version is AFTER_COUNT or (verdict.recent if version is None else verdict.version == version)):
        if not database:
            raise NotRemembered
        if version is AFTER_COUNT:
            version = current_version()  # read before the query: a change committed meanwhile shows next time
        try:
            verdict = selectors.verify(raw, version)
        except (OperationalError, InterfaceError) as exc:  # the caller answers 503 (or /ws closes 1011)
            raise KeysUnavailable from exc
    if not verdict.good:
        raise InvalidKey
    return verdict.key


_UNSEEN = object()  # a request the middleware did not see (a view called directly)


class ApiKeyAuthentication(BaseAuthentication):
    """DRF's view of the same rule: `request.auth` is the Key, None for an anonymous request
    (`request.user` stays None: a key is not a user). The rate limiter's middleware has resolved
    the key already, or answered 401 (cryptosite.ratelimit sets `request.api_key`, None where keys
    do not apply); only a request it did not see is authenticated here."""

    def authenticate(self, request):
        key = getattr(request, "api_key", _UNSEEN)  # DRF hands it on from the Django request
        if key is _UNSEEN:
            raw = key_from_meta(request.META)
            if raw is None:
                return None
            try:
                key = authenticate(raw)
            except InvalidKey:
                raise AuthenticationFailed(InvalidKey.message) from None
        return None if key is None else (None, key)

    def authenticate_header(self, request) -> str:
        return "Api-Key"

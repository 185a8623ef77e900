"""Writes: create, revoke, a WebSocket's use. Every change to the keys moves their version in Redis
once committed, which is how every process learns that what it remembers is stale
(apikeys.authentication)."""

import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction

from . import usage
from .authentication import authenticate
from .models import ApiKey
from .selectors import Key

log = logging.getLogger(__name__)


class ApiKeyError(Exception):
    """A request the keys cannot satisfy: its message says why."""


def keys_changed() -> None:
    """After the commit: a new random version (never an old one again, even after Redis restarts)."""

    def bump() -> None:
        try:
            usage.redis_client().set(usage.version_key(), uuid.uuid4().hex)
        except Exception as exc:  # committed: every process sees it within selectors.MAX_TRUST_SECONDS
            log.warning("API keys changed, but their version could not be moved on in Redis (%s)", exc)

    transaction.on_commit(bump)


def check_tier(tier: str) -> str:
    if tier not in settings.API_KEY_TIERS:
        raise ApiKeyError(f"Unknown tier: {tier!r} (configured: {', '.join(settings.API_KEY_TIERS) or 'none'})")
    return tier


@transaction.atomic
def create_key(name: str, tier: str) -> tuple[ApiKey, str]:
    """The new key and its full text, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name or len(name) > 50:
        raise ApiKeyError("A key's name is 1 to 50 characters")
    check_tier(tier)
    if ApiKey.objects.filter(name=name).exists():
        raise ApiKeyError(f"A key named {name!r} exists already")
    try:
        with transaction.atomic():
            key, text = ApiKey.objects.create_key(name=name, tier=tier)
    except IntegrityError:  # created by another process since the check above
        raise ApiKeyError(f"A key named {name!r} exists already") from None
    keys_changed()
    return key, text


@transaction.atomic
def revoke_key(name: str) -> ApiKey:
    key = ApiKey.objects.select_for_update().filter(name=name).first()
    if key is None:
        raise ApiKeyError(f"No key named {name!r}")
    if not key.revoked:
        key.revoked = True
        key.save(update_fields=["revoked"])
        keys_changed()
    return key


def use_key(raw: str) -> Key:
    """A key presented outside the rate limiter (a WebSocket): authenticated (raising as
    apikeys.authentication.authenticate does) and its use recorded."""
    key = authenticate(raw)
    try:
        usage.record(key.prefix)
    except Exception as exc:
        log.warning("API key use not recorded: %s", exc)
    return key

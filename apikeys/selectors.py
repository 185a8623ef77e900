"""What this process knows of the keys: the verdicts it reached (good or wrong, and under which
keys' version), the tiers' rates, and the key a DRF request was made with.

A verdict comes from the database (`verify`: prefix lookup, SHA-512 compare) and is remembered
here; which remembered verdict may answer for a request is apikeys.authentication's rule, the one
every caller goes through. A wrong key's verdict is kept TRUST_SECONDS (then asked again), which
is also the longest a good key is trusted while Redis cannot be read; a good one is asked again
after MAX_TRUST_SECONDS whatever the version says (a change whose version Redis could not record
is seen by then).
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings

from .models import ApiKey

TRUST_SECONDS = 5.0
MAX_TRUST_SECONDS = 10.0
MAX_REMEMBERED = 10_000
MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Key:
    prefix: str  # public, unique: names the key's counters
    name: str
    tier: str
    expires: float | None  # Unix seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    key: Key | None  # None: wrong, revoked or expired
    version: str | None  # the keys' version it was reached under (None: Redis could not say)
    at: float  # time.monotonic()

    @property
    def good(self) -> bool:
        return self.key is not None and (self.key.expires is None or self.key.expires > time.time())

    @property
    def recent(self) -> bool:
        return time.monotonic() - self.at < TRUST_SECONDS

    @property
    def trusted(self) -> bool:
        return self.good and time.monotonic() - self.at < MAX_TRUST_SECONDS


_verdicts: dict[str, Verdict] = {}  # good keys' verdicts
_wrong: dict[str, Verdict] = {}  # wrong keys' (apart: a flood of wrong keys never evicts a good one)


# The last key hashed, and its digest: a request asks about its key twice (before its count and
# after, apikeys.authentication), and the hash is half the cost of a remembered key's answer. It
# holds that one key until the next is hashed; the verdicts never hold any.
_last_hashed: tuple[str | None, str] = (None, "")


def _digest(raw: str) -> str:
    """What the verdicts are remembered by: never the key itself."""
    global _last_hashed
    last = _last_hashed  # one read: another thread may replace it meanwhile
    if last[0] is raw:
        return last[1]
    digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
    _last_hashed = (raw, digest)
    return digest


def remembered(raw: str) -> Verdict | None:
    """This process's verdict on a key, if it may still be used: a good one trusted still (whether
    its version is the current one is apikeys.authentication's question), or a recent one."""
    digest = _digest(raw)
    verdict = _verdicts.get(digest) or _wrong.get(digest)
    if verdict is None:
        return None
    age = time.monotonic() - verdict.at  # (Verdict.recent and .trusted, asked at once: every request asks)
    return verdict if age < TRUST_SECONDS or (age < MAX_TRUST_SECONDS and verdict.good) else None


def verify(raw: str, version: str | None) -> Verdict:
    """Ask the database, and remember its answer (read `version` before calling: a change committed
    meanwhile then shows as a newer version at the next request). Callers: apikeys.authentication."""
    key = None
    if raw and len(raw) <= MAX_KEY_LENGTH and "." in raw:
        try:
            found = ApiKey.objects.get_from_key(raw)
        except ApiKey.DoesNotExist:
            found = None
        if found is not None and not found.has_expired:
            expires = found.expiry_date.timestamp() if found.expiry_date else None
            key = Key(found.prefix, found.name, found.tier, expires)
    verdict = Verdict(key, version, time.monotonic())
    store, other = (_verdicts, _wrong) if verdict.good else (_wrong, _verdicts)
    digest = _digest(raw)
    other.pop(digest, None)
    if len(store) >= MAX_REMEMBERED:
        store.clear()
    store[digest] = verdict
    return verdict


def forget_verdicts() -> None:
    global _last_hashed
    _last_hashed = (None, "")
    _verdicts.clear()
    _wrong.clear()


def rate_of(tier: str) -> str:
    """A tier's rate (RATE_LIMIT's syntax); a tier no longer configured gets the anonymous RATE_LIMIT."""
    return settings.API_KEY_TIERS.get(tier) or settings.RATE_LIMIT


def key_of_request(request) -> ApiKey | None:
    """The API key model a DRF request was made with, or None for an anonymous one (or one revoked
    since it was authenticated, a moment ago). `request.auth` is apikeys.authentication's answer,
    reached once per request (a wrong key was answered 401 before any view ran)."""
    key = getattr(request, "auth", None)
    if not isinstance(key, Key):
        return None
    return ApiKey.objects.filter(prefix=key.prefix, revoked=False).first()

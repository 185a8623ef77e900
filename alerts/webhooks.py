"""Webhooks of price alerts: where one may be sent, how its body is signed, when a failed one is
tried again. Pure Python, no Django (the resolver is passed in, so tests need no DNS).

A receiver verifies a delivery by computing HMAC-SHA256 over f"{timestamp}.{body}" (the
`X-Cryptosite-Timestamp` header, a dot, the raw body bytes) with the alert's secret and comparing
its hex digest with the `v1=` value of `X-Cryptosite-Signature` in constant time; it should also
refuse a timestamp far from its own clock (replays). `verify_signature` is that check.

Each delivery is also signed in the Standard Webhooks scheme (https://www.standardwebhooks.com),
which its libraries verify: `webhook-id` (the delivery id, the same at every try),
`webhook-timestamp`, and `webhook-signature` = "v1," + base64 HMAC-SHA256 of f"{id}.{timestamp}.{body}"
under the key the alert's secret encodes (`standard_key`). The secret needs no second form: it is
"whsec_" and 48 hex digits, which is valid base64 too (of 36 bytes), so the one string the client
was given is what both schemes verify with.
"""

import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from market.domain.errors import InvalidInput

SIGNATURE_HEADER = "X-Cryptosite-Signature"
TIMESTAMP_HEADER = "X-Cryptosite-Timestamp"
DELIVERY_HEADER = "X-Cryptosite-Delivery"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
MAX_URL_LENGTH = 2000

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (what a connection could reach)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"Invalid webhook_url: the host {host} cannot be resolved ({exc})") from None
    return [info[4][0] for info in infos]


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def _checked(url: object, allow_private: bool, resolver: Resolver | None):
    """(the URL's parts, the addresses it may be called at: None when private targets are allowed)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"Invalid webhook_url: must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("Invalid webhook_url: not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("Invalid webhook_url: must be http or https")
    if not parts.hostname:
        raise InvalidInput("Invalid webhook_url: no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("Invalid webhook_url: credentials in the URL are not allowed")
    if allow_private:
        return parts, None
    addresses = (resolver or resolve)(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        raise InvalidInput(f"Invalid webhook_url: the host {parts.hostname} cannot be resolved")
    for address in addresses:
        if _forbidden(address):
            raise InvalidInput(f"Invalid webhook_url: {parts.hostname} is a loopback, private, link-local, multicast or "
                               "reserved address, which webhooks may not target (ALERT_WEBHOOK_ALLOW_PRIVATE)")
    return parts, addresses


def check_target(url: object, allow_private: bool, resolver: Resolver | None = None) -> str:
    """The webhook URL if it may be called: http or https, a host, and (unless the operator allows
    private targets) every address it resolves to public: no loopback, private, link-local,
    multicast, reserved or unspecified address, so that alerts cannot be aimed at the server's
    own network. Checked when the alert is set and again before each delivery (DNS changes)."""
    _checked(url, allow_private, resolver)
    return url


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the URL with the checked address in place of the host name, the
    Host header and the TLS server name of the original (so no second lookup can lead elsewhere)."""

    url: str
    headers: dict
    extensions: dict


def pin_target(url: object, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """`check_target`, then the connection pinned to an address just checked: a name that resolves
    to a public address at the check and to a private one a moment later (DNS rebinding) cannot
    turn a delivery inward. With private targets allowed, the URL as it is."""
    parts, addresses = _checked(url, allow_private, resolver)
    if addresses is None:
        return Target(url, {}, {})
    address = addresses[0].split("%", 1)[0]
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return Target(urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Cryptosite-Signature` value: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key of a secret: the base64 after "whsec_" decoded, as its libraries do
    (padding optional)."""
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: v1,<base64 HMAC-SHA256(standard_key(secret), f"{id}.{timestamp}.{body}")>."""
    mac = hmac.new(standard_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both schemes' headers of one try."""
    return {
        TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body), DELIVERY_HEADER: delivery_id,
        STANDARD_ID_HEADER: delivery_id, STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(secret, delivery_id, timestamp, body),
    }


def verify_signature(secret: str, timestamp: str, header: str, body: bytes, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = signature(secret, sent, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def retry_schedule(base: float, cap: float, total: float) -> list[float]:
    """The waits before each retry of a failed delivery: doubling from `base`, at most `cap`
    each, for as long as their sum stays within `total` (a day by default); then it is given up.
    The number of tries is fixed by this (1 + its length); each wait gets jitter when used."""
    waits, spent, wait = [], 0.0, base
    while base > 0 and spent + wait <= total:
        waits.append(wait)
        spent += wait
        wait = min(cap, wait * 2)
    return waits


def jittered(wait: float, rand: float) -> float:
    """A wait between half and all of `wait` (rand in [0, 1)): retries of many alerts that failed
    together do not come back together."""
    return wait * (0.5 + rand / 2)

"""Who the client is: the one rule for the address a request or WebSocket comes from, used by the
rate limit, the WebSocket connection cap, the untracked markets' share per client and /metrics.

The connection's own address is the client's, unless it is one of TRUSTED_PROXIES (CIDRs): then
`X-Forwarded-For` is read from the right (the hop our proxy appended) past every trusted hop, and
the first untrusted one is the client, as nginx's `real_ip_recursive` and Rails' `remote_ip` do.
A client can write anything to the left of what its proxy appends, so nothing past the first
untrusted hop is believed. Several `X-Forwarded-For` headers count as one list joined by commas,
in order, as Django joins them in META.

Budgets are counted per `rate_client`: an IPv4 address, or the /64 an IPv6 address belongs to (one
host is routinely handed a whole /64, so counting per address would give it 2**64 budgets).
"""

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_PREFIX = 64

# The rate_client of the request or WebSocket being served (None for the server's own work: beat,
# tasks, commands), for what is shared out per client deeper down (market.markets.admit_untracked).
_asking: ContextVar[str | None] = ContextVar("asking", default=None)


def asking() -> str | None:
    return _asking.get()


@contextmanager
def asking_as(client: str) -> Iterator[None]:
    """Serve a request or a connection as `client` (HTTP: cryptosite.ratelimit; /ws: streaming.admission);
    threads it hands work to inherit it (asgiref copies the context)."""
    token = _asking.set(client)
    try:
        yield
    finally:
        _asking.reset(token)


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def parse_proxies(spec) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TRUSTED_PROXIES as networks; ValueError names a bad entry (the system check reports it)."""
    items = tuple(item.strip() for item in spec if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"not an address or CIDR: {item!r}") from None
    return _networks(items)


def _address(text: str) -> IPAddress | None:
    """An address as a hop may write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(remote: str | None, forwarded_for: str | None) -> str:
    """The client's address (see the module's docstring). `forwarded_for`: every X-Forwarded-For
    header's value, joined by commas in the order they came."""
    address = _address(remote or "") or ipaddress.IPv4Address("0.0.0.0")
    proxies = parse_proxies(settings.TRUSTED_PROXIES)
    if not proxies or not forwarded_for or not _trusted(address, proxies):
        return str(address)
    # Bounded work whatever the header: at most this many hops are looked at.
    hops = forwarded_for.split(",")[-32:]
    for hop in reversed(hops):
        nearer = _address(hop)
        if nearer is None:
            # A hop our proxy passed on that is not an address: the request is counted against the
            # proxy that reported it, never against a name the client made up.
            break
        address = nearer
        if not _trusted(address, proxies):
            break
    return str(address)


def forwarded_for(headers) -> str | None:
    """An ASGI scope's X-Forwarded-For headers, joined by commas in order (as Django joins them)."""
    values = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
    return ",".join(values) if values else None


def scope_client(scope) -> str:
    """What an ASGI connection (HTTP or WebSocket) is counted against: its client's rate_client."""
    remote = (scope.get("client") or (None,))[0]
    return counted_as(remote, forwarded_for(scope.get("headers", [])))


def counted_as(remote: str | None, forwarded_for: str | None) -> str:
    """rate_client(client_ip(...)): what a request from `remote` is counted against."""
    return _counted_as(remote, forwarded_for, tuple(settings.TRUSTED_PROXIES))


# Every hot read asks this: parsing addresses costs ~10 µs, a remembered answer ~0.3 µs. The
# proxies are part of the key, so a changed setting is never answered from an old entry.
@lru_cache(maxsize=4096)
def _counted_as(remote: str | None, forwarded_for: str | None, proxies: tuple[str, ...]) -> str:
    return rate_client(client_ip(remote, forwarded_for))


def rate_client(ip: str) -> str:
    """What a budget is counted against: the IPv4 address, or the IPv6 address's /64."""
    address = _address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address) if address is not None else ip


def is_local(remote: str | None, forwarded_for: str | None) -> bool:
    """The request comes from this machine: what /metrics and debug pages are served to. A request
    from loopback that carries X-Forwarded-For came through a proxy on this machine: unless that
    proxy is trusted (and says the client is local too), its client is somewhere else."""
    address = _address(client_ip(remote, forwarded_for))
    if address is None or not address.is_loopback:
        return False
    proxies = parse_proxies(settings.TRUSTED_PROXIES)
    remote_address = _address(remote or "")
    return not forwarded_for or (remote_address is not None and _trusted(remote_address, proxies))

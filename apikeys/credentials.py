"""Where a client puts its key. Pure: no Django.

`Authorization: Api-Key <key>` (the scheme is case-insensitive) or `X-API-Key: <key>`. An
Authorization header of another scheme (`Bearer` for /metrics) is not a key. A header that is
there but empty is a wrong key (""), never anonymous.
"""

SCHEME = "api-key"


def key_from(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries, "" for a present but empty one, or None for none."""
    if authorization is not None:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == SCHEME:
            return rest.strip()
    if x_api_key is not None:
        return x_api_key.strip()
    return None


def key_from_meta(meta) -> str | None:
    """`key_from` for a Django request's META."""
    return key_from(meta.get("HTTP_AUTHORIZATION"), meta.get("HTTP_X_API_KEY"))


def key_from_asgi(headers) -> str | None:
    """`key_from` for an ASGI scope's headers, read as Django reads them: a header sent more than
    once is joined with commas (so the edge, the WebSocket and the middleware agree on a key)."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name == b"authorization" or name == b"x-api-key":
            text = value.decode("latin-1")
            found[name] = f"{found[name]},{text}" if name in found else text
    return key_from(found.get(b"authorization"), found.get(b"x-api-key"))

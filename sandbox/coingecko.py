"""The sandbox's coingecko public REST API (to be written)."""


def serve(handler, path: str, q: dict) -> None:
    return handler._send(404, {"message": "NotFound"})

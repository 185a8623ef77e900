"""The baseline for the API benchmark: a bare ASGI app answering a fixed JSON body."""

import json

BODY = json.dumps({"symbol": "BTC", "price": 50000.5, "timestamp": 1633659200000, "source": "binance"}).encode()


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})

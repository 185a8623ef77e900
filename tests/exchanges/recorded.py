"""An exchange's documented responses, recorded, served through the adapters' one HTTP seam
(httpx.MockTransport): the contract tests of every adapter use it."""

import json
from pathlib import Path

import httpx

PAYLOADS = Path(__file__).parent / "payloads"


class Recorded:
    """Serves payloads/<name>.json's bodies by path, or by path and one query parameter
    ("/coins/bitcoin/ohlc?days=1"), with `strip` cut from the path first; records every request.
    A body starting "RAW:" is served as written (numbers keep their digits)."""

    def __init__(self, name: str, strip: str = "", not_found: object = None):
        self.bodies = json.loads((PAYLOADS / f"{name}.json").read_text())
        self.strip = strip
        self.not_found = not_found if not_found is not None else {"message": "NotFound"}
        self.requests: list[httpx.Request] = []
        self.paced: list[tuple[str, float]] = []
        self.override: httpx.Response | Exception | None = None  # every request's answer
        self.answers: dict[str, httpx.Response] = {}  # path -> one endpoint's own answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.override, Exception):
            raise self.override
        if self.override is not None:
            return self.override
        path = request.url.path.removeprefix(self.strip)
        if path in self.answers:
            return self.answers[path]
        keys = [f"{path}?{name}={value}" for name, value in request.url.params.multi_items()] + [path]
        body = next((self.bodies[key] for key in keys if key in self.bodies), None)
        if body is None:
            return httpx.Response(404, json=self.not_found)
        if isinstance(body, str) and body.startswith("RAW:"):
            return httpx.Response(200, content=body[4:].encode(), headers={"Content-Type": "application/json"})
        return httpx.Response(200, json=body)

    def client(self) -> httpx.AsyncClient:
        """An HTTP client answered by these recordings (the seam's `client`, monkeypatched)."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def asked(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

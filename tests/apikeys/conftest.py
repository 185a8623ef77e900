import httpx
import pytest
from django.test import override_settings

from apikeys import selectors, services
from core import threads
from cryptosite import edge
from cryptosite.asgi import application

TIERS = {"standard": "1000/m", "pro": "10000/m", "tiny": "3/m"}


@pytest.fixture(autouse=True)
def _tiers():
    with override_settings(API_KEY_TIERS=TIERS, RATE_LIMIT="100/m"):
        yield


def new_key(name: str = "alice", tier: str = "standard") -> str:
    return services.create_key(name, tier)[1]


@pytest.fixture
async def served():
    """An HTTP client of the application exactly as the server runs it (edge, then Django)."""
    transport = httpx.ASGITransport(app=application, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client
    await edge.close_connections()
    threads.close_connections()


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """Every time the database is asked about a key (the real verification, counted)."""
    calls, real = [], selectors.verify

    def counted(raw, version):
        calls.append(raw)
        return real(raw, version)

    monkeypatch.setattr(selectors, "verify", counted)
    return calls

import pytest

from market.feeds import CcxtFeed
from market.feeds.viaccxt import WATCHES


@pytest.fixture(params=WATCHES)
def watch(request, monkeypatch):
    """Each watch ccxt.pro offers, as if it were the best the exchange had (tests/ingest's ccxt feeds)."""
    monkeypatch.setattr(CcxtFeed, "watch_method", lambda self, has: request.param if has.get(request.param) else None)
    return request.param

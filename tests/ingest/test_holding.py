"""Several ingest processes, one holder per exchange (ingest.holding, market.locks.Holding), against
the sandbox's live feeds, the real database and Redis, in this process: candidates spread the
exchanges among themselves, only holders connect, a holder's death or departure hands its
exchanges to another, and a holder cut off from Redis lets go before anyone else may take over.
The same with real processes killed outright: tests/e2e/test_scale_out.py."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from core import keys
from core.cache import redis_client
from ingest.holding import Candidate
from market import selectors
from market.locks import Holding, holders
from market.models import PriceTick
from tests.conftest import OwnRedis

from .test_exchange import feeds, track, until  # noqa: F401  (the feeds fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SOURCES = ["binance", "coinbase", "kraken"]
LEASE = 1.2


def holder_names() -> dict[str, str | None]:
    return {s: h for s, h in zip(SOURCES, holders([keys.feed_holding(s) for s in SOURCES]).values())}


def connected(candidate: Candidate) -> set[str]:
    """The exchanges this candidate has a live connection to."""
    return {s for s, (ingest, _task) in candidate.ingests.items() if any(c.ws is not None for c in ingest.connections)}


class Running:
    """A candidate's loop as a task; `die()` ends it as kill -9 would for the leases (never released)."""

    def __init__(self, name: str):
        self.candidate = Candidate(SOURCES, lease=LEASE, name=name)
        self.task = asyncio.create_task(self.candidate.run())

    async def die(self) -> None:
        for holding in self.candidate.holdings.values():
            holding.lock = None  # forgotten, not released: it lapses as a dead process's would
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_candidates_spread_the_exchanges_and_only_holders_connect(feeds):  # noqa: F811
    await sync_to_async(track)("binance", "BTC")
    await sync_to_async(track)("coinbase", "BTC")
    await sync_to_async(track)("kraken", "BTC")
    a, b = Running("host-a"), Running("host-b")
    try:
        await until(lambda: all(holder_names().values()), 10, "every feed held")
        # Two candidates, three exchanges: two and one, never three and none, whoever started first.
        await until(lambda: sorted(len(c.ingests) for c in (a.candidate, b.candidate)) == [1, 2], 15,
                    "the feeds spread over both candidates")
        held = await sync_to_async(holder_names)()
        assert set(a.candidate.ingests) == {s for s, h in held.items() if h == "host-a"}
        assert set(b.candidate.ingests) == {s for s, h in held.items() if h == "host-b"}
        assert not set(a.candidate.ingests) & set(b.candidate.ingests)
        await until(lambda: connected(a.candidate) | connected(b.candidate) == set(SOURCES), 10, "every feed connected")
        assert not connected(a.candidate) & connected(b.candidate), "one connection per exchange"
    finally:
        await a.stop()
        await b.stop()


async def test_a_dead_holders_exchanges_are_taken_over_and_their_prices_keep_coming(feeds):  # noqa: F811
    for source in SOURCES:
        await sync_to_async(track)(source, "BTC")
    a = Running("host-a")
    await until(lambda: all(holder_names().values()), 10, "host-a holds every feed")
    b = Running("host-b")
    try:
        await asyncio.sleep(0.5)  # host-b a candidate, holding nothing: host-a took all before it came
        assert not b.candidate.ingests
        died = time.monotonic()
        await a.die()
        await until(lambda: set(holder_names().values()) == {"host-b"}, LEASE + 5, "host-b holds every feed")
        took = time.monotonic() - died
        assert took <= LEASE + 2 * LEASE / 6 + 1.0, took
        after = await sync_to_async(lambda: {s: PriceTick.objects.filter(source=s).count() for s in SOURCES})()
        # The new holder connects, resyncs and stores prices of every exchange again.
        await until(lambda: all(PriceTick.objects.filter(source=s).count() > after[s] for s in SOURCES), 15,
                    "new prices from every exchange after the takeover")
        state = await sync_to_async(selectors.feed_states)()
        assert all(state[s].get("live_since") for s in SOURCES)
    finally:
        await b.stop()


async def test_a_holder_that_stops_hands_its_feeds_over_at_once(feeds):  # noqa: F811
    await sync_to_async(track)("binance", "BTC")
    a = Running("host-a")
    await until(lambda: holder_names()["binance"] == "host-a", 10, "host-a holds binance")
    b = Running("host-b")
    try:
        await asyncio.sleep(0.3)
        stopped = time.monotonic()
        await a.stop()
        assert holder_names()["binance"] is None  # released, not left to lapse
        await until(lambda: holder_names()["binance"] == "host-b", LEASE, "host-b holds binance")
        assert time.monotonic() - stopped < LEASE
        assert not a.candidate.ingests
    finally:
        await b.stop()


def test_a_holding_is_one_holders_and_names_it():
    first, second = Holding("feed-holder:test", 5, "one"), Holding("feed-holder:test", 5, "two")
    assert first.acquire()
    assert not second.acquire()
    assert holders(["feed-holder:test", "feed-holder:nobody"]) == {"feed-holder:test": "one", "feed-holder:nobody": None}
    assert first.renew()
    first.release()
    assert second.acquire() and holders(["feed-holder:test"]) == {"feed-holder:test": "two"}
    assert not first.renew()  # released: no longer its to renew


def test_a_lapsed_holding_is_renewed_only_if_nobody_took_it():
    first, second = Holding("feed-holder:test", 1, "one"), Holding("feed-holder:test", 1, "two")
    assert first.acquire()
    redis_client().delete(keys.lock_key("feed-holder:test"))  # lapsed (or a restarted Redis)
    assert first.renew() and holders(["feed-holder:test"])["feed-holder:test"] == "one"
    redis_client().delete(keys.lock_key("feed-holder:test"))
    assert second.acquire()
    assert not first.renew() and not first.held


def test_a_holder_cut_off_from_redis_lets_go_within_half_its_lease(tmp_path, settings):
    own = OwnRedis(tmp_path)
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": own.url}}
    try:
        holding = Holding("feed-holder:test", 2, "one")
        assert holding.acquire()
        own.stop()
        assert holding.renew()  # just now renewed: holds on through a short outage
        time.sleep(1.1)
        assert not holding.renew() and not holding.held  # a lease later another may take it: let go first
    finally:
        own.stop() if own.proc.poll() is None else None


async def test_health_and_metrics_say_who_holds_each_feed_and_the_scheduler(feeds):  # noqa: F811
    import httpx

    from cryptosite.asgi import application

    await sync_to_async(track)("binance", "BTC")
    await sync_to_async(Holding(keys.SCHEDULER_HOLDING, 5, "beat-host-b").acquire)()
    a = Running("host-a")
    try:
        await until(lambda: holder_names()["binance"] == "host-a", 10, "host-a holds binance")
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            health = (await http.get("/health")).json()
            scrape = (await http.get("/metrics")).text
        assert health["sources"]["binance"]["holder"] == "host-a"
        assert health["scheduler"] == {"holder": "beat-host-b"}
        assert 'cryptosite_feed_holder{exchange="binance",instance="host-a"} 1.0' in scrape
        assert 'cryptosite_scheduler_holder{instance="beat-host-b"} 1.0' in scrape
    finally:
        await a.stop()
    assert (await sync_to_async(holder_names)())["binance"] is None


async def test_a_slow_letting_go_of_one_feed_keeps_the_other_leases_renewed(feeds, monkeypatch):  # noqa: F811
    from ingest.exchange import ExchangeIngest

    original = ExchangeIngest.stop

    async def slow_stop(self, task, why):  # writing what it holds takes two leases (a slow database)
        await asyncio.sleep(2 * LEASE)
        await original(self, task, why)

    monkeypatch.setattr(ExchangeIngest, "stop", slow_stop)
    for source in ("binance", "coinbase"):
        await sync_to_async(track)(source, "BTC")
    a = Running("host-a")
    a.candidate.sources = a.candidate.order = ["binance", "coinbase"]
    try:
        await until(lambda: [holder_names()[s] for s in ("binance", "coinbase")] == ["host-a"] * 2, 10, "host-a holds both")
        # Another process takes binance (host-a cut off for a lease, say): host-a lets go of it.
        await sync_to_async(lambda: redis_client().delete(keys.lock_key(keys.feed_holding("binance"))))()
        assert await sync_to_async(Holding(keys.feed_holding("binance"), 30, "intruder").acquire)()
        await until(lambda: "binance" in a.candidate.letting_go, 5, "host-a letting go of binance")
        for _ in range(int(2 * LEASE / 0.1)):
            assert (await sync_to_async(holder_names)())["coinbase"] == "host-a", "coinbase lapsed while binance stopped"
            await asyncio.sleep(0.1)
        await until(lambda: "binance" not in a.candidate.ingests and not a.candidate.letting_go, 10, "binance let go of")
    finally:
        await a.stop()

"""Order books: the composite book's rules (pure), and the endpoint and the WebSocket channel over
the sandbox exchange's books."""

from decimal import Decimal as D

import pytest

from market.depth.book import Book, composite, depth_bands, spread_and_mid
from market.depth.services import watched
from market.tasks import poll_books
from tests.conftest import request_count, set_fault


def book(source, bids, asks):
    return Book(source, "BTC", tuple(bids), tuple(asks), 1)


def test_spread_and_mid_are_exact():
    assert spread_and_mid([("100.10", "1")], [("100.30", "2")]) == (D("0.20"), D("100.20"))
    assert spread_and_mid([], [("1", "1")]) == (None, None)


def test_the_composite_sums_quantities_per_price_level_and_names_the_exchanges():
    a = book("binance", [("100.00000000", "1.0"), ("99.5", "2")], [("100.5", "1")])
    b = book("kraken", [("100.0", "0.5"), ("99.0", "3")], [("100.40", "4"), ("100.5", "1")])
    merged = composite([a, b], 10, fetched=100)
    assert merged["bids"] == [["100", "1.5", ["binance", "kraken"]], ["99.5", "2", ["binance"]], ["99", "3", ["kraken"]]]
    assert merged["asks"] == [["100.4", "4", ["kraken"]], ["100.5", "2", ["binance", "kraken"]]]
    assert composite([a, b], 1, fetched=100)["bids"] == [["100", "1.5", ["binance", "kraken"]]]


def test_the_composite_stops_where_the_shallowest_cut_book_stops():
    cut = book("binance", [("100", "1"), ("99.9", "1")], [("100.1", "1"), ("100.2", "1")])  # two levels fetched: cut
    deep = book("kraken", [("99.95", "1"), ("99", "5")], [("100.15", "1"), ("101", "5")])
    merged = composite([cut, deep], 10, fetched=2)
    assert [level[0] for level in merged["bids"]] == ["100", "99.95", "99.9"]  # not 99: binance's book may go on
    assert [level[0] for level in merged["asks"]] == ["100.1", "100.15", "100.2"]
    assert merged["complete"] == (False, False)


def test_a_band_beyond_the_fetched_levels_is_unknown_not_understated():
    bids, asks = [("100", "1"), ("99.9", "2")], [("100.2", "1"), ("100.3", "2")]
    bands = depth_bands(bids, asks, complete=(False, True))
    assert bands["0.5"]["bid"] is None and bands["0.5"]["ask"] == "3"


def test_depth_within_a_percent_of_mid_counts_only_levels_that_close():
    bids = [("100", "1"), ("99.6", "2"), ("98.9", "4"), ("97", "8")]
    asks = [("100.2", "1"), ("100.6", "2"), ("101.5", "4"), ("103", "8")]
    bands = depth_bands(bids, asks)  # mid 100.1
    assert bands["0.5"] == {"bid": "3", "ask": "3"}
    assert bands["1"] == {"bid": "3", "ask": "3"}
    assert bands["2"] == {"bid": "7", "ask": "7"}


@pytest.mark.django_db
class TestOrderBookEndpoint:
    @pytest.mark.parametrize("source", ["binance", "coinbase", "kraken"])
    def test_each_exchanges_book_keeps_its_numbers_best_first(self, client, sandbox, settings, source):
        settings.EXCHANGES = ["binance", "coinbase", "kraken"]
        body = client.get("/api/market/orderbook", {"symbol": "BTC", "source": source, "depth": 7})
        assert body.status_code == 200, body.content
        data = body.json()
        assert len(data["bids"]) == len(data["asks"]) == 7
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in data["bids"] + data["asks"])
        bids, asks = [D(p) for p, _ in data["bids"]], [D(p) for p, _ in data["asks"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
        assert data["spread"] == pytest.approx(float(asks[0] - bids[0])) and data["mid"] == pytest.approx(float((asks[0] + bids[0]) / 2))
        assert set(data["depth_within_pct"]) == {"0.5", "1", "2"}

    def test_composite_consolidates_every_exchange(self, client, sandbox, settings):
        settings.EXCHANGES = ["binance", "coinbase", "kraken"]
        data = client.get("/api/market/orderbook", {"symbol": "ETH", "source": "composite", "depth": 50}).json()
        assert data["sources"] == ["binance", "coinbase", "kraken"]
        contributors = {x for level in data["bids"] + data["asks"] for x in level[2]}
        assert contributors == {"binance", "coinbase", "kraken"}
        bands = data["depth_within_pct"]
        known = [D(bands[p]["bid"]) for p in ("0.5", "1", "2") if bands[p]["bid"] is not None]
        assert bands["0.5"]["bid"] is not None and known == sorted(known)  # wider bands hold more (or are unknown)

    def test_a_book_is_fetched_once_a_second_whatever_the_readers(self, client, sandbox):
        client.get("/api/market/orderbook", {"symbol": "BTC"})
        calls = request_count(sandbox, "binance")
        for _ in range(5):
            assert client.get("/api/market/orderbook", {"symbol": "BTC", "depth": 3}).status_code == 200
        assert request_count(sandbox, "binance") == calls

    @pytest.mark.parametrize("params, status", [({"symbol": "BTC", "depth": 0}, 400), ({"symbol": "BTC", "depth": 101}, 400),
                                                ({"symbol": "BTC", "depth": "x"}, 400), ({"depth": 5}, 400),
                                                ({"symbol": "NOPE"}, 404), ({"symbol": "BTC", "source": "mtgox"}, 404)])
    def test_bad_parameters_get_the_contracts_errors(self, client, sandbox, params, status):
        response = client.get("/api/market/orderbook", params)
        assert response.status_code == status and "error" in response.json()

    @pytest.mark.parametrize("fault, status", [({"mode": "error", "status": 500}, 502), ({"mode": "ratelimit"}, 503),
                                               ({"mode": "malformed"}, 502)])
    def test_exchange_faults_give_the_contracts_statuses(self, client, sandbox, fault, status):
        client.get("/api/market/price", {"symbol": "BTC"})  # the listing is known
        set_fault(sandbox, "binance", **fault)
        assert client.get("/api/market/orderbook", {"symbol": "BTC"}).status_code == status


@pytest.mark.django_db
def test_books_nobody_watches_are_never_fetched_by_the_poller(sandbox):
    calls = request_count(sandbox, "binance")
    assert watched() == [] and poll_books() == 0
    assert request_count(sandbox, "binance") == calls

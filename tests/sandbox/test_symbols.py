"""The sandbox's opt-in longer symbol list (sandbox_exchange --symbols N, for capacity runs): the named
symbols first, then generated ones, the same on every run, listed and priced as the named ones are;
without it, the sandbox lists what the demo and the tests have always seen."""

import httpx
import pytest
from django.core.management import CommandError, call_command

from market.domain.symbols import normalize_symbol
from sandbox import simulation as sim
from sandbox.faults import FeedFaults
from sandbox.feeds import FeedServer
from sandbox.server import Market

NOW = 1_795_000_000_000


def test_without_a_count_the_sandbox_lists_the_named_symbols_only():
    assert sim.symbols() == sim.SYMBOLS == tuple(sim.BASE_PRICES)
    assert Market().symbols == sim.SYMBOLS


def test_a_count_lists_the_named_symbols_then_generated_ones_the_same_on_every_run():
    listed = sim.symbols(480)
    assert len(listed) == len(set(listed)) == 480
    assert listed[: len(sim.SYMBOLS)] == sim.SYMBOLS
    # Pinned: a seed of their own (not Python's hash), so every process and every run lists these.
    assert listed[60:64] == ("ELIG", "AKO", "LLZU", "WEOP")
    assert sim._generated_prices(10) == dict(list(sim.GENERATED_PRICES.items())[:10])


def test_generated_symbols_read_back_as_themselves_in_every_pair_notation():
    for symbol in sim.GENERATED_PRICES:
        assert normalize_symbol(symbol) == normalize_symbol(f"{symbol}USDT") == normalize_symbol(f"{symbol}-USD") == symbol


def test_generated_symbols_have_plausible_deterministic_prices():
    for symbol in sim.symbols(480)[60:]:
        assert 0.001 <= sim.base_price(symbol) <= 1000
        price = sim.price(symbol, NOW)
        assert price > 0 and price == sim.price(symbol, NOW)
        assert price.as_tuple().exponent >= sim.tick_size(symbol).as_tuple().exponent  # on the tick


@pytest.mark.parametrize("count", [0, sim.MAX_SYMBOLS + 1])
def test_a_count_out_of_range_is_refused_before_anything_is_served(count):
    with pytest.raises(CommandError, match=f"not {count}"):
        call_command("sandbox_exchange", "--port", "0", "--symbols", str(count))


def test_binance_exchange_info_and_tickers_list_every_symbol_of_the_count(sandbox):
    sandbox.RequestHandlerClass.market = Market(sim.symbols(480))
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        info = http.get("/binance/api/v3/exchangeInfo").json()
        tickers = http.get("/binance/api/v3/ticker/price").json()
    assert [s["baseAsset"] for s in info["symbols"]] == list(sim.symbols(480))
    assert {t["symbol"] for t in tickers} == {f"{s}USDT" for s in sim.symbols(480)}


def test_the_feeds_take_subscriptions_to_every_symbol_of_the_count():
    feeds = FeedServer(Market(sim.symbols(480)), FeedFaults())
    assert feeds.binance_symbol(f"{sim.symbols(480)[-1].lower()}usdt") == sim.symbols(480)[-1]
    assert feeds.binance_symbol(f"{sim.symbols(481)[-1].lower()}usdt") is None

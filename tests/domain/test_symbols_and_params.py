import pytest

from market.domain.errors import InvalidInput, NotFound
from market.domain.params import parse_limit
from market.domain.symbols import normalize_source, normalize_symbol, normalize_symbols, price_market, resolve_source


@pytest.mark.parametrize("raw", ["BTC", "btc", " BTC ", "BTCUSDT", "BTC-USD", "BTC/USDT", "btcusdc", "XBT", "XBT/USD"])
def test_every_notation_of_bitcoin_normalises_to_btc(raw):
    assert normalize_symbol(raw) == "BTC"


def test_an_unknown_but_well_formed_symbol_passes_parsing_so_the_exchange_can_say_404():
    assert normalize_symbol("INVALID_SYMBOL") == "INVALID_SYMBOL"


@pytest.mark.parametrize("raw", ["", "   ", None, 42, "BTC USD", "B$C", "x" * 31, "BTC-"])
def test_malformed_symbols_are_invalid_input(raw):
    with pytest.raises(InvalidInput):
        normalize_symbol(raw)


def test_symbol_lists_are_deduplicated_in_order_and_bounded():
    assert normalize_symbols(["eth", "BTCUSDT", "ETH-USD"], limit=10) == ["ETH", "BTC"]
    assert normalize_symbols("sol,ada", limit=10) == ["SOL", "ADA"]
    with pytest.raises(InvalidInput):
        normalize_symbols(["A", "B", "C"], limit=2)
    with pytest.raises(InvalidInput):
        normalize_symbols([], limit=2)


def test_sources_are_case_insensitive_and_unknown_ones_are_not_found():
    assert normalize_source("Binance", ["binance", "coinbase"]) == "binance"
    assert normalize_source("COMPOSITE", ["binance"], allow_composite=True) == "composite"
    with pytest.raises(NotFound):
        normalize_source("kraken", ["binance", "coinbase"])
    with pytest.raises(NotFound):
        normalize_source("composite", ["binance"])


@pytest.mark.parametrize("raw,expected", [(None, 100), ("", 100), ("1", 1), ("1000", 1000), (" 7 ", 7)])
def test_limits_parse_with_a_default(raw, expected):
    assert parse_limit(raw, default=100) == expected


@pytest.mark.parametrize("raw", ["0", "1001", "-5", "ten", "1.5", True])
def test_limits_outside_1_to_1000_or_not_integers_are_invalid(raw):
    with pytest.raises(InvalidInput):
        parse_limit(raw, default=100)


EXCHANGES = ["binance", "coinbase", "kraken"]


def test_a_source_named_by_nothing_is_the_first_configured_exchange_or_the_callers_default():
    assert resolve_source(None, EXCHANGES) == "binance"
    assert resolve_source(None, ["kraken", "binance"]) == "kraken"
    assert resolve_source(None, EXCHANGES, composite=True, default="composite") == "composite"
    assert resolve_source(" Coinbase ", EXCHANGES) == "coinbase"


def test_composite_is_a_source_only_where_the_caller_serves_one():
    assert resolve_source("COMPOSITE", EXCHANGES, composite=True) == "composite"
    with pytest.raises(NotFound, match="Must be one of: binance, coinbase, kraken$"):
        resolve_source("composite", EXCHANGES)
    with pytest.raises(NotFound, match="binance, coinbase, kraken, composite"):
        resolve_source("bitstamp", EXCHANGES, composite=True)


def test_an_empty_source_in_a_message_is_invalid_but_an_empty_query_parameter_is_absent():
    with pytest.raises(InvalidInput, match="Invalid source"):
        resolve_source("", EXCHANGES)
    assert price_market("btc", "", EXCHANGES) == ("binance", "BTC")
    assert price_market("btc", "Composite", EXCHANGES) == ("composite", "BTC")

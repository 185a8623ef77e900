"""The patterns that read client input outside sentiment (symbols, sources, alert windows, rates,
group names) take bounded time whatever the input: each worst case, as long as the largest body or
query a client can send, is refused or read within 50 ms of CPU (the best of three runs, the
thread's own time, so a busy machine does not fail it). Sentiment's patterns: tests/sentiment/test_bounds.py."""

import time

import pytest

from core.ratelimit import parse_rate
from market.domain.alerts import parse_window
from market.domain.errors import MarketError
from market.domain.symbols import normalize_source, normalize_symbol, normalize_symbols
from streaming.groups import price_group

BUDGET = 0.050
LENGTH = 64 * 1024
UNITS = ["A", "a", "1", "_", "-", "/", "BTC-", "BTC/", "9m", "1/", " ", "é", "\u0000", "A" * 19 + "!"]


def cpu_time(call) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        try:
            call()
        except (MarketError, ValueError):
            pass
        best = min(best, time.thread_time() - started)
    return best


PARSERS = {
    "symbol": normalize_symbol,
    "symbols": lambda text: normalize_symbols(text.split(",")[:1000], 100),
    "source": lambda text: normalize_source(text, ["binance", "coinbase"], allow_composite=True),
    "alert window": parse_window,
    "rate": lambda text: parse_rate.__wrapped__(text),
    "group name": lambda text: price_group("binance", text),
}


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_pattern_on_client_input_takes_bounded_time(name, unit):
    text = (unit * (LENGTH // len(unit) + 1))[:LENGTH]
    assert cpu_time(lambda: PARSERS[name](text)) < BUDGET, f"{name} on {LENGTH} of {unit!r}"

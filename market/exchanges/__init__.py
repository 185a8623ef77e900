"""The exchange registry: adapters by name, one instance per process.

The native adapters (Binance, Coinbase, Kraken: the fast path) and CoinGecko speak their APIs
directly; any other id is one of ccxt's exchanges (viaccxt).
"""

from django.conf import settings

from .base import Exchange
from .binance import Binance
from .coinbase import Coinbase
from .coingecko import CoinGecko
from .errors import ExchangeError
from .kraken import Kraken

NATIVE: dict[str, type[Exchange]] = {"binance": Binance, "coinbase": Coinbase, "kraken": Kraken, "coingecko": CoinGecko}
_instances: dict[tuple[str, str], Exchange] = {}

__all__ = ["NATIVE", "Binance", "CoinGecko", "Coinbase", "Exchange", "ExchangeError", "Kraken", "describe", "get_exchange",
           "min_poll_interval", "unknown_ids", "venues"]


def venues(names: list[str]) -> list[str]:
    """The names that are exchanges, not aggregators (CoinGecko): the composite is made of these."""
    return [n for n in names if not (n in NATIVE and NATIVE[n].aggregator)]


def describe(name: str) -> dict[str, str]:
    """What a source is, for /health: an exchange or an aggregator, spoken natively or through ccxt,
    and what its prices' timestamps mean."""
    adapter = NATIVE.get(name, Exchange)
    return {"kind": "aggregator" if adapter.aggregator else "exchange", "via": "native" if name in NATIVE else "ccxt",
            "timestamps": adapter.timestamps}


def min_poll_interval(name: str) -> float:
    """The shortest poll period the source's published budget allows (0: no floor of its own)."""
    return NATIVE[name].min_poll_interval if name in NATIVE else 0.0


def unknown_ids(names: list[str]) -> list[str]:
    """The names that are neither a native adapter nor an exchange ccxt serves."""
    others = [n for n in names if n not in NATIVE]
    if not others:
        return []
    from .viaccxt import ccxt_ids

    served = set(ccxt_ids())
    return [n for n in others if n not in served]


def get_exchange(name: str) -> Exchange:
    url = settings.EXCHANGE_API_URLS.get(name, "")
    key = (name, url)
    if key not in _instances:
        if name in NATIVE:
            _instances[key] = NATIVE[name](url, timeout=settings.EXCHANGE_TIMEOUT)
        else:
            from .viaccxt import CcxtExchange

            _instances[key] = CcxtExchange(name, url, timeout=settings.EXCHANGE_TIMEOUT)
    return _instances[key]

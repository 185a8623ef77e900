"""The exchange registry: adapters by name, one instance per process."""

from django.conf import settings

from .base import Exchange
from .binance import Binance
from .coinbase import Coinbase
from .errors import ExchangeError
from .kraken import Kraken

ADAPTERS: dict[str, type[Exchange]] = {"binance": Binance, "coinbase": Coinbase, "kraken": Kraken}
_instances: dict[tuple[str, str], Exchange] = {}

__all__ = ["ADAPTERS", "Binance", "Coinbase", "Exchange", "ExchangeError", "Kraken", "get_exchange"]


def get_exchange(name: str) -> Exchange:
    url = settings.EXCHANGE_API_URLS[name]
    key = (name, url)
    if key not in _instances:
        _instances[key] = ADAPTERS[name](url, timeout=settings.EXCHANGE_TIMEOUT)
    return _instances[key]

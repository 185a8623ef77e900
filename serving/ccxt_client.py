"""ccxt's async exchange clients, with their HTTP, their pacing and their book numbers handed to us.

`client_class("okx")` is ccxt's own class for the exchange with three methods replaced, so the
project's adapter (market.exchanges.viaccxt) keeps one HTTP seam for every exchange:

- `fetch`, ccxt's one HTTP call: the instance's `transport.get(url, headers)` makes it (the adapters'
  seam: the shared httpx client, the timeout, the back-off every process shares), so ccxt opens no
  aiohttp session. JSON numbers are parsed as Decimal, then ccxt's own `handle_errors` reads the
  answer and raises its exception for the exchange's error codes; any other status of 400 or more is
  `transport.refused(status)`.
- `throttle(cost)`, which ccxt awaits before each request with the endpoint's cost: here
  `transport.pace(cost x rateLimit)`, the seam's per-exchange slots, shared by every thread and event
  loop of the process.
- `parse_order_book_bid_ask`: ccxt reads book levels with float() whatever its `number`; here each
  price and quantity stays as printed, in a str that orders as a number (ccxt sorts the levels, and
  for some exchanges cuts them to the asked depth).

`number` is `str`, so ccxt's parsed tickers and candles carry the exchange's digits as printed.

What it relies on in ccxt beyond its documented API (tests/serving/test_pins.py checks each): the
async base class `ccxt.async_support.base.exchange.Exchange`'s `fetch(url, method, headers, body)`,
which `fetch2` awaits for every request; `throttle(cost)`, which `fetch2` awaits first when
`enableRateLimit`; `handle_errors(code, reason, url, method, headers, body, response,
request_headers, request_body)`; `parse_order_book_bid_ask(bidask, price_key, amount_key,
count_or_id_key)`, through which `parse_order_book_bids_asks` reads every level; the `number` class attribute
that `parse_number` calls; `safe_string`.
"""

import json
from decimal import Decimal
from functools import cache
from typing import Protocol

WRITTEN_FOR = {"ccxt": "4.5"}


class Transport(Protocol):
    """What a client needs of its adapter."""

    async def get(self, url: str, headers: dict | None) -> tuple[int, str, dict, str]:
        """(status, reason, headers, text) of a GET."""

    async def pace(self, seconds: float) -> None:
        """Wait for the next request slot of `seconds`."""

    def refused(self, status: int) -> Exception:
        """The error for an answer of `status` (400 or more) that ccxt mapped to none of its own."""


class Printed(str):
    """A number as the exchange printed it, ordered as a number ("9999.9" < "10000.1")."""

    @classmethod
    def of(cls, value: str | None) -> "Printed | None":
        return None if value is None else cls(value)

    def __lt__(self, other):
        return Decimal(self) < Decimal(other)


@cache
def client_class(exchange_id: str) -> type:
    """ccxt's async class for the exchange, with fetch, throttle and book levels as above. An instance
    needs its `transport` set before its first request."""
    import ccxt.async_support as ccxt_async

    base = getattr(ccxt_async, exchange_id)

    class Client(base):
        number = str
        transport: Transport

        async def fetch(self, url, method="GET", headers=None, body=None):
            if method != "GET" or body:
                raise ccxt_async.NotSupported(f"{self.id}: public data only, no {method}")
            status, reason, seen, text = await self.transport.get(url, headers)
            try:
                parsed = json.loads(text, parse_float=Decimal) if text else None
            except ValueError:
                parsed = None
            self.handle_errors(status, reason, url, method, seen, text, parsed, headers, body)
            if status >= 400:
                raise self.transport.refused(status)
            if parsed is None:
                raise ccxt_async.BadResponse(f"{self.id}: unparseable response")
            return parsed

        async def throttle(self, cost=None):
            await self.transport.pace(self.rateLimit / 1000 * float(cost or 1))

        def parse_order_book_bid_ask(self, bidask, price_key=0, amount_key=1, count_or_id_key=2):
            return [Printed.of(self.safe_string(bidask, price_key)), Printed.of(self.safe_string(bidask, amount_key))]

    Client.__name__ = Client.__qualname__ = f"Cryptosite{base.__name__}"
    return Client

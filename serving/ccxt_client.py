"""ccxt's async exchange clients, with their HTTP, their pacing and their book numbers handed to us,
and ccxt.pro's live-feed clients with what the feed's watchdog needs of them.

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

`pro_client("okx", trades_kept)` is a client of ccxt.pro's class for the exchange (the ingest
process's ingest.ccxt_connection; `pro_client_class` is None when ccxt.pro has none): `number` is
`str` too; `fetch` refuses, so the feed makes no REST request of its own (its markets are the REST
client's, through `set_markets`); each watch answers with the market's recent trades, up to
`trades_kept` (ccxt.pro's documented `newUpdates` off and `tradesLimit`). The connection's watchdog
reads `last_heard_ms(client)`, when any of the client's WebSockets last received a frame (a pong
too), and probes a quiet one with `await ping(client)`, as ccxt.pro's own keepalive does.

`rebase_urls(urls, base)` moves ccxt's URLs to another host (a mirror, a proxy, the sandbox): each
URL in ccxt's `urls['api']` structure (documented API: a string, or dicts of them nested) gets
`base` in place of its scheme and host and keeps its path. The REST adapter and the feed
(market.feeds.viaccxt) both move theirs so.

What it relies on in ccxt beyond its documented API (tests/serving/test_pins.py checks each): the
async base class `ccxt.async_support.base.exchange.Exchange`'s `fetch(url, method, headers, body)`,
which `fetch2` awaits for every request; `throttle(cost)`, which `fetch2` awaits first when
`enableRateLimit`; `handle_errors(code, reason, url, method, headers, body, response,
request_headers, request_body)`; `parse_order_book_bid_ask(bidask, price_key, amount_key,
count_or_id_key)`, through which `parse_order_book_bids_asks` reads every level; the `number` class attribute
that `parse_number` calls; `safe_string`; `load_markets(reload, params)`, which every unified method
awaits first and which keeps its loading in `markets_loading`, a future of the calling event loop. In ccxt.pro (the same base class, and
`ccxt.async_support.base.ws.client.Client`): the exchange's `clients` ({url: Client}, which
`client(url)` fills); its `ping(client)`, None or the exchange's own keepalive message, which
`Client.ping_loop` sends with `Client.send(message)`; a Client's `last_message_at`, the milliseconds
of the last frame `handle_message` received (whatever its type); its `connection`, the aiohttp
WebSocket whose `ping()` `ping_loop` calls when the exchange has no message of its own; and
`ccxt.pro.exchanges`, the ids ccxt.pro has a class for.
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

        async def load_markets(self, reload=False, params={}):  # noqa: B006 (ccxt's own signature)
            # The adapter sets the markets itself (set_markets) before any other call. ccxt's own
            # load_markets would keep a future of the event loop that first called it, which a call
            # from another loop (the sync code's asyncio.run per call, the server's threads) cannot await.
            if self.markets and not reload:
                return self.markets
            return await super().load_markets(reload, params)

        async def throttle(self, cost=None):
            await self.transport.pace(self.rateLimit / 1000 * float(cost or 1))

        def parse_order_book_bid_ask(self, bidask, price_key=0, amount_key=1, count_or_id_key=2):
            return [Printed.of(self.safe_string(bidask, price_key)), Printed.of(self.safe_string(bidask, amount_key))]

    Client.__name__ = Client.__qualname__ = f"Cryptosite{base.__name__}"
    return Client


# --- ccxt.pro: the live feeds' clients --------------------------------------------------------


@cache
def pro_client_class(exchange_id: str) -> type | None:
    """ccxt.pro's class for the exchange (None when ccxt.pro has none): numbers as str, no REST."""
    import ccxt.pro

    if exchange_id not in ccxt.pro.exchanges:
        return None
    base = getattr(ccxt.pro, exchange_id)

    class LiveClient(base):
        number = str

        async def fetch(self, url, method="GET", headers=None, body=None):
            raise ccxt.pro.NotSupported(f"{self.id}: the feed makes no REST request (the REST adapter does)")

    LiveClient.__name__ = LiveClient.__qualname__ = f"CryptositeLive{base.__name__}"
    return LiveClient


def pro_client(exchange_id: str, trades_kept: int):
    """A new ccxt.pro client for the exchange (ccxt.pro must have a class for it) whose watches answer
    with the market's recent trades, up to `trades_kept`, not only the new ones."""
    return pro_client_class(exchange_id)({"enableRateLimit": True, "newUpdates": False,
                                          "options": {"tradesLimit": trades_kept}})


def last_heard_ms(client) -> int:
    """When any WebSocket of the ccxt.pro client last received a frame, any frame (an answer, a trade,
    a pong), in milliseconds since the epoch (0: none yet)."""
    return max([0, *(ws.last_message_at or 0 for ws in list(client.clients.values()))])


async def ping(client) -> list[Exception]:
    """Probe each WebSocket of the ccxt.pro client as ccxt.pro's keepalive does: the exchange's own
    message where it has one (OKX's text "ping"), else a WebSocket ping frame. The answer is a frame
    (`last_heard_ms`). Returns the probes that failed (a connection this broken goes quiet)."""
    failed = []
    for ws in list(client.clients.values()):
        try:
            await (ws.send(client.ping(ws)) if client.ping else ws.connection.ping())
        except Exception as exc:
            failed.append(exc)
    return failed


# --- ccxt's URLs ------------------------------------------------------------------------------


def api_urls(value) -> list[str]:
    """Every URL in (a part of) ccxt's `urls['api']`: a string, or dicts of them nested."""
    if isinstance(value, dict):
        return [url for item in value.values() for url in api_urls(item)]
    return [value] if isinstance(value, str) and "://" in value else []


def rebase_urls(value, base: str):
    """(A part of) ccxt's `urls['api']` with `base` in place of each URL's scheme and host, each keeping
    its path: https://www.bitstamp.net/api -> <base>/api; anything not a URL is kept."""
    if isinstance(value, dict):
        return {key: rebase_urls(item, base) for key, item in value.items()}
    if isinstance(value, str) and "://" in value:
        rest = value.split("://", 1)[1]
        return base + (rest[rest.index("/"):] if "/" in rest else "")
    return value

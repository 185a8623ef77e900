"""python manage.py sandbox_exchange --port N: the loopback sandbox exchange (REST and live feeds); an app of
the demo and the tests, so DEMO=1 (`make demo`, `make sandbox`) or SANDBOX=1 installs this command."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox import simulation as sim
from sandbox.faults import FeedFaults
from sandbox.feeds import start_feed_server
from sandbox.server import Market, make_server


class Command(BaseCommand):
    help = "Serve a simulated Binance, Coinbase and Kraken on loopback (see sandbox/server.py and feeds.py)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8090)
        parser.add_argument("--feed-port", type=int, default=None, help="the live feeds' port (default: port + 1)")
        parser.add_argument("--trade-period", type=float, default=settings.SANDBOX_TRADE_PERIOD,
                            help="seconds between trades on each market (default: SANDBOX_TRADE_PERIOD or 0.1)")
        parser.add_argument("--symbols", type=int, default=None, metavar="N",
                            help=f"list N symbols: the {len(sim.SYMBOLS)} named ones, then generated ones (up to "
                                 f"{sim.MAX_SYMBOLS}, for capacity runs; default: the {len(sim.SYMBOLS)} named ones)")

    def handle(self, *args, host: str, port: int, feed_port: int | None, trade_period: float, symbols: int | None,
               **options):
        logging.getLogger("websockets").setLevel(logging.WARNING)
        try:
            listed = sim.symbols(symbols)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        market, feed_faults = Market(listed), FeedFaults()
        server = make_server(host, port, market, feed_faults)
        rest_port = server.server_address[1]
        feeds = start_feed_server(market, feed_faults, host, rest_port + 1 if feed_port is None else feed_port,
                                  trade_period=trade_period).port
        self.stdout.write(f"sandbox exchange on http://{host}:{rest_port} (/binance, /coinbase, /kraken; faults at "
                          f"/_sandbox/faults) and ws://{host}:{feeds} (/binance/stream, /coinbase, /kraken/v2); {len(listed)} symbols")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

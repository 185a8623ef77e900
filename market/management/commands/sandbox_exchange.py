"""python manage.py sandbox_exchange --port N: the loopback sandbox exchange."""

from django.core.management.base import BaseCommand

from market.sandbox.server import make_server


class Command(BaseCommand):
    help = "Serve a simulated Binance, Coinbase and Kraken on loopback (see market/sandbox/server.py)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8090)

    def handle(self, *args, host: str, port: int, **options):
        server = make_server(host, port)
        self.stdout.write(f"sandbox exchange on http://{host}:{server.server_address[1]} "
                          "(/binance, /coinbase, /kraken; faults at /_sandbox/faults)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

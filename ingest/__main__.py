"""`python -m ingest [--feeds binance,kraken]`: the ingest process, as `make run`, `make demo` and
compose start it. Any number may run (one per host, say): each exchange's feed is held by one of
them at a time, and another takes it over when its holder dies (holding.py)."""

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest",
                                     description="Store and publish prices and candles from the exchanges' live feeds (FEEDS).")
    parser.add_argument("--feeds", help="comma-separated exchanges (default: FEEDS)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")
    import django

    django.setup(set_prefix=False)
    import uvloop
    from django.conf import settings
    from django.core.management import call_command

    from .process import run

    call_command("check")  # the settings, before a feed is read (as manage.py's commands do)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingest %(levelname)s %(name)s: %(message)s")
    sources = [s.strip() for s in args.feeds.split(",")] if args.feeds else settings.FEEDS
    from core.instance import instance_name

    print(f"ingest {instance_name()}: a candidate for the feeds of {', '.join(sources) or 'no exchange'}", flush=True)
    try:
        uvloop.run(run(sources))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""python manage.py ingest: read the exchanges' live feeds (market.ingest); `make run` starts it."""

import logging

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand

from market import ingest


class Command(BaseCommand):
    help = "Store and publish prices and candles from the exchanges' WebSocket feeds (FEEDS)."

    def add_arguments(self, parser):
        parser.add_argument("--feeds", help="comma-separated exchanges (default: FEEDS)")

    def handle(self, *args, feeds: str | None = None, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s ingest %(levelname)s %(name)s: %(message)s")
        sources = [s.strip() for s in feeds.split(",")] if feeds else settings.FEEDS
        self.stdout.write(f"ingest: feeds of {', '.join(sources) or 'no exchange'}")
        try:
            uvloop.run(ingest.run(sources))  # the servers' loop too: a feed's price is published from it
        except KeyboardInterrupt:
            pass

"""The ingest process: one ExchangeIngest per exchange in FEEDS, all on one event loop (uvloop, the
web servers' loop too: a feed's price is published from it). `python -m ingest` starts it."""

import asyncio
import logging

from .exchange import ExchangeIngest

log = logging.getLogger(__name__)


async def run(sources: list[str]) -> None:
    exchanges = [ExchangeIngest(source) for source in sources]
    if not exchanges:
        log.info("no feeds configured (FEEDS is empty): the REST poller does all the work")
        await asyncio.Event().wait()
    await asyncio.gather(*(exchange.run() for exchange in exchanges))

"""The ingest process: a candidate for the feed of every exchange in FEEDS (holding.py), running
one ExchangeIngest for each it holds, all on one event loop (uvloop, the web servers' loop too: a
feed's price is published from it). `python -m ingest` starts it."""

import asyncio
import logging

from .holding import Candidate

log = logging.getLogger(__name__)


async def run(sources: list[str]) -> None:
    if not sources:
        log.info("no feeds configured (FEEDS is empty): the REST poller does all the work")
        await asyncio.Event().wait()
    await Candidate(sources).run()

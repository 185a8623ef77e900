"""The ingest process (`python -m ingest`): the exchanges' live WebSocket feeds, stored and
published as they arrive.

process.py runs a Candidate (holding.py) for the feeds of FEEDS: each exchange's feed is held by one
ingest process at a time, on a lease in Redis, wherever several run. For each feed it holds, one
ExchangeIngest (exchange.py): its connection(s) to the
feed (connection.py), the storage throttles, the writer thread (through market's own writes, under
the exchange's write lease), the REST resync after a reconnect or a gap, and the markets the admin
adds or removes. A plain package, not an app: it uses market (its services, selectors and feed
parsers) and nothing imports it (tests/test_layers.py).
"""

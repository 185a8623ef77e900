"""The bottom layer: what every app shares, importing no app and not the project's wiring.

Redis (the cache's client, the pipelined asyncio connection), errors (the contract's one body),
metrics (the counters every process writes), rate parsing and counting, who a client is, and the
threads Django's synchronous code runs on. Apps import this; it imports none of them
(tests/test_layers.py keeps it so).
"""

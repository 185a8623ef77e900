"""The one place that relies on other libraries' internals: the seams into the servers (uvicorn,
daphne and Twisted), Channels' Redis layer and Django's ASGI handler and Redis cache, each made
because a measured cost or a guarantee of the contract needed it.

- django_handler: Django under ASGI in one hop to a worker thread per request, its body counted
  as it arrives (Django's ASGIHandler, past its __init__).
- daphne_http: daphne's HTTP request with its body bounded as Twisted reads it.
- daphne_ws: daphne's WebSocket with a bounded backlog and the 1008/1009 close codes.
- uvicorn_ws: uvicorn's WebSocket with a bounded backlog and a send that never waits.
- channel_layer: channels-redis with one reader per process and a group message in one round trip
  (its Lua script writes into channels-redis's layout in Redis).
- django_cache: Django's Redis cache with one redis client per pool and one set of pools per
  process.

Each module says in its docstring why it needs what it uses and lists exactly what it relies on,
and names in WRITTEN_FOR the libraries' versions (major.minor) it was written and tested against.
tests/serving/test_pins.py fails, naming the module to check again, when an installed version
differs or one of those internals changed shape; the system check serving.W001 (serving.checks)
warns at start when an installed version differs.

It sits above core (it may import core's errors, threads and metrics, and libraries) and below
every app: no app is imported here (the layering contract in pyproject.toml).
"""

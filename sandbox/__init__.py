"""The sandbox exchange: a loopback server speaking the REST and WebSocket wire formats of Binance,
Coinbase Exchange and Kraken over one simulated market (simulation.py), with fault switches.

`make demo` and the tests run it in place of the real exchanges. An app of the demo and the tests
only: cryptosite.settings installs it for DEMO=1 and SANDBOX=1 (the suite's), and no production
module imports it (tests/test_layers.py). It uses market's pure domain; market never imports it.
"""

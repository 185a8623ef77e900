"""Technical indicators on stored candles: parsing of what a client asks for (spec.py, pure),
the computation with TA-Lib, the field's reference implementation (compute.py), the read that
fetches the warm-up candles first (selectors.py) and the REST view (views.py)."""

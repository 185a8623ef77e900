"""The errors of market data, each carrying the HTTP status of the public contract.

Pure Python: the interfaces (REST, WebSocket) read `status` and `str(error)`.
"""


class MarketError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(MarketError):
    status = 400


class NotFound(MarketError):
    status = 404


class NoData(MarketError):
    """Nothing stored yet and nothing could be fetched."""

    status = 503

"""The one error type of the exchange adapters, carrying the contract's HTTP status."""

from ..domain.errors import MarketError

TIMEOUT = 504
UNREACHABLE = 503
BAD_RESPONSE = 502
NOT_LISTED = 404


class ExchangeError(MarketError):
    def __init__(self, message: str, status: int = BAD_RESPONSE, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

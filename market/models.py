"""Stored market data: what is tracked, price ticks, and OHLCV candles."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .domain.symbols import display_name
from .domain.timeframes import TIMEFRAMES

SOURCE_MAX_LENGTH = 32  # ccxt's longest exchange id is 21 characters


def source_choices() -> list[tuple[str, str]]:
    """The configured sources (EXCHANGES): the admin adds markets of these."""
    return [(name, display_name(name)) for name in settings.EXCHANGES]


SOURCE_CHOICES = source_choices
TIMEFRAME_CHOICES = [(tf, tf) for tf in TIMEFRAMES]
PRICE = {"max_digits": 30, "decimal_places": 12}


class TrackedMarket(models.Model):
    """An (exchange, symbol) pair the poller follows. Seeded from EXCHANGES x SYMBOLS on the
    first migrate; the admin edits it afterwards."""

    source = models.CharField(max_length=SOURCE_MAX_LENGTH, choices=SOURCE_CHOICES)
    symbol = models.CharField(max_length=20)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "symbol"]
        constraints = [models.UniqueConstraint(fields=["source", "symbol"], name="tracked_market_unique")]

    def __str__(self) -> str:
        return f"{self.symbol} on {display_name(self.source)}"


class PriceTick(models.Model):
    source = models.CharField(max_length=SOURCE_MAX_LENGTH, choices=SOURCE_CHOICES)
    symbol = models.CharField(max_length=20)
    price = models.DecimalField(**PRICE)
    # The exchange's time of the price when it gives one, else the poll's time slot.
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    change_pct = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["source", "symbol", "timestamp"], name="price_tick_unique"),
        ]
        indexes = [
            models.Index(fields=["source", "symbol", "-timestamp"], name="tick_market_time"),
            # The admin's list orders by (-timestamp, -id): one index serves its first page.
            models.Index(fields=["-timestamp", "-id"], name="tick_time_id"),
            models.Index(fields=["symbol", "-timestamp"], name="tick_symbol_time"),
            # /health's fallback freshness, MAX(received_at) of one exchange: one index lookup,
            # not a scan of the exchange's ticks (market.selectors.source_freshness).
            models.Index(fields=["source", "received_at"], name="tick_source_received"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.price} on {self.source} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class Candle(models.Model):
    source = models.CharField(max_length=SOURCE_MAX_LENGTH, choices=SOURCE_CHOICES)
    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=TIMEFRAME_CHOICES)
    open_time = models.BigIntegerField(help_text="epoch milliseconds, aligned to the timeframe")
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(max_digits=38, decimal_places=12)
    closed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "symbol", "timeframe", "-open_time"]
        constraints = [
            models.UniqueConstraint(fields=["source", "symbol", "timeframe", "open_time"], name="candle_unique"),
        ]
        indexes = [models.Index(fields=["timeframe", "closed"], name="candle_tf_closed")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.open_time} on {self.source}"


class OnDemandMarket(models.Model):
    """An untracked market someone asked for, the only kind whose data the server stores for a
    stranger: at most UNTRACKED_MARKETS_MAX of them, UNTRACKED_MARKETS_PER_CLIENT first asked for
    by one client (market.markets.admit_untracked). Polled until `expires_at`, which live
    subscriptions keep pushing forward; forgotten with its candles once nobody asked for it for
    UNTRACKED_RETENTION_HOURS after `used_at`."""

    source = models.CharField(max_length=SOURCE_MAX_LENGTH, choices=SOURCE_CHOICES)
    symbol = models.CharField(max_length=20)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(default=timezone.now)
    admitted_for = models.CharField(
        max_length=64, blank=True, default="",
        help_text="the client (IPv4 address or IPv6 /64) that first asked for it; empty: the server's own work",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "symbol"], name="on_demand_unique")]


class ExchangeSchedule(models.Model):
    """How often each exchange is polled, editable at run time in the admin. Exchanges
    without a row use POLL_INTERVAL."""

    source = models.CharField(max_length=SOURCE_MAX_LENGTH, choices=SOURCE_CHOICES, unique=True)
    poll_interval = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(3600.0)],
        help_text="seconds between price polls (1 to 3600); takes effect within a few seconds",
    )
    enabled = models.BooleanField(default=True, help_text="pause polling of this exchange")

    class Meta:
        ordering = ["source"]

    def __str__(self) -> str:
        return f"{display_name(self.source)} every {self.poll_interval:g}s"

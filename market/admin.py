"""The operator's admin: what is tracked, how often each exchange is polled, and read-only
views of stored ticks and candles that stay fast on millions of rows."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.utils.functional import cached_property

from . import markets, selectors
from .domain.errors import MarketError
from .domain.symbols import normalize_symbol
from .models import Candle, ExchangeSchedule, OnDemandMarket, PriceTick, TrackedMarket
from .payloads import stored_candle_payloads

admin.site.site_header = "cryptosite admin"
admin.site.site_title = "cryptosite"


class EstimatedCountPaginator(Paginator):
    """No COUNT(*) over millions of rows: PostgreSQL's estimate for the whole table, and a
    count capped at 10,000 otherwise (pages beyond that are still reachable by filtering)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [query.model._meta.db_table])
                row = cursor.fetchone()
                if row and row[0] > self.CAP:
                    return int(row[0])
        return self.object_list[: self.CAP + 1].count()


class TrackedSymbolFilter(admin.SimpleListFilter):
    """Symbol choices from the tracked markets (a few rows), not from scanning ticks."""

    title = "symbol"
    parameter_name = "symbol"

    def lookups(self, request, model_admin):
        symbols = TrackedMarket.objects.order_by("symbol").values_list("symbol", flat=True).distinct()
        return [(s, s) for s in symbols]

    def queryset(self, request, queryset):
        return queryset.filter(symbol=self.value()) if self.value() else queryset


class TrackedMarketForm(forms.ModelForm):
    class Meta:
        model = TrackedMarket
        fields = ["source", "symbol", "enabled"]

    def clean(self):
        data = super().clean()
        source, raw = data.get("source"), data.get("symbol")
        if not source or not raw:
            return data
        try:
            symbol = normalize_symbol(raw)
            markets.ensure_listed(source, symbol)
        except MarketError as exc:
            if getattr(exc, "status", 400) in (502, 503, 504):
                raise forms.ValidationError(f"Could not check the listing with the exchange: {exc}") from None
            raise forms.ValidationError({"symbol": str(exc)}) from None
        data["symbol"] = symbol
        return data


@admin.register(TrackedMarket)
class TrackedMarketAdmin(admin.ModelAdmin):
    form = TrackedMarketForm
    list_display = ["symbol", "source", "enabled", "latest_price", "created_at"]
    list_filter = ["source", "enabled"]
    list_editable = ["enabled"]
    search_fields = ["symbol"]
    actions = ["enable", "disable"]
    change_form_template = "admin/market/trackedmarket/change_form.html"

    @admin.display(description="latest price")
    def latest_price(self, obj):
        tick = selectors.latest_tick(obj.source, obj.symbol)
        return "–" if tick is None else f"{tick.price.normalize():f}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        markets.tracked_set_changed()
        if obj.enabled:
            from .tasks import sync_exchange_candles

            # Prices follow at the next poll cycle; candles are backfilled right away.
            transaction.on_commit(lambda: sync_exchange_candles.delay(obj.source))

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        markets.tracked_set_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        markets.tracked_set_changed()

    @admin.action(description="Enable polling of the selected markets")
    def enable(self, request, queryset):
        updated = queryset.update(enabled=True)
        markets.tracked_set_changed()
        self.message_user(request, f"{updated} market(s) enabled; they are polled from the next cycle.", messages.SUCCESS)

    @admin.action(description="Disable polling of the selected markets")
    def disable(self, request, queryset):
        updated = queryset.update(enabled=False)
        markets.tracked_set_changed()
        self.message_user(request, f"{updated} market(s) disabled.", messages.SUCCESS)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            candles = selectors.candles(obj.source, obj.symbol, "1h", selectors.now_ms() - 100 * 3_600_000, selectors.now_ms())
            context["chart_data"] = json.dumps(stored_candle_payloads(candles))
        return super().render_change_form(request, context, add, change, form_url, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PriceTick)
class PriceTickAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "source", "symbol", "price", "change_pct", "received_at"]
    list_filter = ["source", TrackedSymbolFilter]
    date_hierarchy = "timestamp"  # drawn by market_admin.fast_date_hierarchy (no DISTINCT scans)
    # Exact symbol matches only: they use the (symbol, time) index.
    search_fields = ["=symbol"]
    ordering = ["-timestamp"]
    sortable_by = ["timestamp", "price", "change_pct"]


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ["open_time_utc", "source", "symbol", "timeframe", "open", "high", "low", "close", "volume", "closed"]
    list_filter = ["source", "timeframe", "closed", TrackedSymbolFilter]
    search_fields = ["=symbol"]
    ordering = ["-open_time"]

    @admin.display(description="open time (UTC)", ordering="open_time")
    def open_time_utc(self, obj):
        from .payloads import iso

        return iso(obj.open_time)[:16].replace("T", " ")


@admin.register(OnDemandMarket)
class OnDemandMarketAdmin(ReadOnlyAdmin):
    """The untracked markets kept for clients (UNTRACKED_MARKETS_MAX, a share of them per client
    address): which, for whom, and until when; forgotten by the beat's pruning, not here."""

    list_display = ["source", "symbol", "admitted_for", "used_at", "expires_at"]
    list_filter = ["source"]
    search_fields = ["=symbol", "=admitted_for"]
    ordering = ["-used_at"]


@admin.register(ExchangeSchedule)
class ExchangeScheduleAdmin(admin.ModelAdmin):
    list_display = ["source", "poll_interval", "enabled"]
    list_editable = ["poll_interval", "enabled"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        selectors.forget_poll_schedule()

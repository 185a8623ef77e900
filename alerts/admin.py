"""Price alerts and their webhook deliveries, read-only: what fired, when, and every try."""

from django.contrib import admin

from .models import Delivery, DeliveryAttempt, PriceAlert


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PriceAlert)
class PriceAlertAdmin(ReadOnly):
    list_display = ["id", "key", "symbol", "source", "condition", "threshold", "window", "repeat", "armed",
                    "fired_count", "last_fired_at", "created_at"]
    list_filter = ["source", "condition", "armed", "repeat"]
    search_fields = ["symbol", "key__name", "webhook_url"]
    exclude = ["secret"]  # it signs the webhooks: not shown again, not even here
    list_select_related = ["key"]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "at", "status_code", "error", "response", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = ["id", "alert", "state", "attempts", "created_at", "finished_at"]
    list_filter = ["state"]
    readonly_fields = ["id", "alert", "url", "body", "state", "attempts", "created_at", "finished_at"]
    inlines = [AttemptInline]
    list_select_related = ["alert"]

"""Keys in the admin: created (the full key shown once, by the library's admin), named, given a
tier, revoked; with each key's use, read from Redis (apikeys.usage)."""

import logging
from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import services, usage
from .models import ApiKey

log = logging.getLogger(__name__)

# The library's own model is not used (ApiKey extends it): one "API keys" page, not two.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


def _tier_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} ({rate})") for name, rate in settings.API_KEY_TIERS.items()]


class ApiKeyForm(forms.ModelForm):
    tier = forms.ChoiceField(choices=_tier_choices, help_text="Its rate limit (API_KEY_TIERS).")

    class Meta:
        model = ApiKey
        fields = ["name", "tier", "expiry_date", "revoked"]


def _when(seconds: float | None) -> str:
    return "never" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "tier", "requests_today", "last_used", "created", "expiry_date", "revoked"]
    list_filter = ["tier", "revoked", "created"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is None:
            return fields
        return fields + (("tier",) if obj.revoked else ()) + ("requests_by_day", "last_used")

    @admin.display(description="requests today (UTC)")
    def requests_today(self, obj) -> str:
        try:
            return str(usage.requests_by_day(obj.prefix, 1)[0][1])
        except Exception as exc:  # Redis away: the page still opens
            log.warning("API key usage unavailable: %s", exc)
            return "–"

    @admin.display(description="last used")
    def last_used(self, obj) -> str:
        try:
            return _when(usage.last_used([obj.prefix]).get(obj.prefix))
        except Exception as exc:
            log.warning("API key usage unavailable: %s", exc)
            return "–"

    @admin.display(description="requests per day (UTC, last 7 days)")
    def requests_by_day(self, obj) -> str:
        try:
            return ", ".join(f"{day}: {count}" for day, count in usage.requests_by_day(obj.prefix, 7))
        except Exception as exc:
            log.warning("API key usage unavailable: %s", exc)
            return "–"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.keys_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.keys_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        services.keys_changed()

    @admin.action(description="Revoke the selected keys (cannot be undone)")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked=False).update(revoked=True)
        services.keys_changed()
        self.message_user(request, f"{revoked} key(s) revoked; every server refuses them from now on.", messages.SUCCESS)

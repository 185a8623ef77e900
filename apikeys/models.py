"""An API key: djangorestframework-api-key's hashed key (only its prefix and a SHA-512 hash are
stored; the full key is shown once, at creation), with a unique name and a tier."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class ApiKey(AbstractAPIKey):
    # Unique (the library's is not): scripts and the command line name keys to revoke them.
    name = models.CharField(max_length=50, unique=True, help_text="A unique name for the key, e.g. who uses it.")
    # A name from API_KEY_TIERS; not a choices list, so that configuring tiers needs no migration.
    tier = models.CharField(max_length=30, default="standard", help_text="Its rate limit: one of API_KEY_TIERS.")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

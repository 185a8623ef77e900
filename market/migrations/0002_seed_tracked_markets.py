"""Seed the tracked markets from EXCHANGES x SYMBOLS, once, on the first migrate."""

from django.conf import settings
from django.db import migrations

from market.domain.symbols import normalize_symbol


def seed(apps, schema_editor):
    TrackedMarket = apps.get_model("market", "TrackedMarket")
    symbols = list(dict.fromkeys(normalize_symbol(s) for s in settings.SYMBOLS))
    TrackedMarket.objects.bulk_create(
        [TrackedMarket(source=source, symbol=symbol) for source in settings.EXCHANGES for symbol in symbols],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("market", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

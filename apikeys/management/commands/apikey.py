"""`manage.py apikey create NAME [--tier TIER]` (prints the new key), `list`, `revoke NAME`."""

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apikeys import services, usage
from apikeys.models import ApiKey


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key and print it (it cannot be shown again).")
        create.add_argument("name")
        create.add_argument("--tier", default=None, help="One of API_KEY_TIERS (default: the first).")
        sub.add_parser("list", help="List the keys (never the keys themselves: only their prefixes).")
        revoke = sub.add_parser("revoke", help="Revoke a key by its name.")
        revoke.add_argument("name")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except services.ApiKeyError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, name: str, tier: str | None, **options) -> None:
        tier = tier if tier is not None else next(iter(settings.API_KEY_TIERS), "")
        key, text = services.create_key(name, tier)
        self.stderr.write(f"Created {key.name} ({key.tier}). Store the key now: it cannot be shown again.")
        self.stdout.write(text)

    def _list(self, **options) -> None:
        keys = list(ApiKey.objects.order_by("name"))
        try:
            last = usage.last_used([k.prefix for k in keys])
            today = {k.prefix: usage.requests_by_day(k.prefix, 1)[0][1] for k in keys}
        except Exception:  # Redis away: the keys are still listed
            last, today = {}, {}
        self.stdout.write("name\tprefix\ttier\tstatus\tcreated\trequests_today\tlast_used")
        for k in keys:
            status = "revoked" if k.revoked else "expired" if k.has_expired else "active"
            used = datetime.fromtimestamp(last[k.prefix], UTC).isoformat() if k.prefix in last else "-"
            self.stdout.write("\t".join([k.name, k.prefix, k.tier, status, k.created.isoformat(), str(today.get(k.prefix, "-")),
                                         used]))

    def _revoke(self, name: str, **options) -> None:
        key = services.revoke_key(name)
        self.stdout.write(f"Revoked {key.name} ({key.prefix}).")

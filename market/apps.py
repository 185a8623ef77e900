from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Market data"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks, partitions  # noqa: F401  (checks registers the system checks)

        # Every migrate (a deploy) makes sure of the tick partitions ahead (PostgreSQL only).
        post_migrate.connect(partitions.ensure_after_migrate, sender=self, dispatch_uid="market.tick_partitions")

"""manage.py tick_partitions: the ticks' partitions on PostgreSQL, each with PostgreSQL's estimate
of its rows and its size on disk; --maintain runs the hourly maintenance now (the partitions ahead
made sure of, days past TICK_RETENTION_DAYS dropped)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from market import partitions, prices


class Command(BaseCommand):
    help = "List the tick table's partitions (PostgreSQL) with their estimated rows; --maintain runs the hourly maintenance now."

    def add_arguments(self, parser):
        parser.add_argument("--maintain", action="store_true",
                            help="create the partitions ahead and drop the days past TICK_RETENTION_DAYS now")

    def handle(self, *args, maintain: bool = False, **options):
        if not partitions.in_use():
            self.stdout.write("The ticks are not partitioned (SQLite, or migration 0007 not applied): "
                              "one table, pruned hourly by DELETE.")
            return
        if maintain:
            removed = prices.prune_ticks(settings.TICK_RETENTION_DAYS)
            self.stdout.write(f"maintained: {removed:,} ticks older than {settings.TICK_RETENTION_DAYS} days removed")
        rows = partitions.partitions()
        self.stdout.write(f"{'partition':<30} {'ticks from (UTC)':<18} {'rows (est.)':>12} {'size':>10}")
        for p in rows:
            start = p.day.isoformat() if p.day else "(default)"
            estimate = f"{p.rows:,}" if p.rows >= 0 else "?"
            self.stdout.write(f"{p.name:<30} {start:<18} {estimate:>12} {p.bytes / 1_048_576:>8.1f} MB")
        self.stdout.write(f"{len(rows)} partitions; {partitions.AHEAD_DAYS} days ahead are kept created; "
                          "row counts are PostgreSQL's estimates (exact after ANALYZE)")

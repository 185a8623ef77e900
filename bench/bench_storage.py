"""Ticks on PostgreSQL: the table partitioned by week (migration 0007, market.partitions) beside one
table (the schema before it, migration 0007 reversed), in the same run, in one throw-away cluster
started from Debian's binaries (/usr/lib/postgresql/*/bin; skipped without them).

Each database gets BENCH_STORAGE_TICKS (default 10,000,000) ticks, 4 sources x 60 symbols from the
Monday at least 30 days ago until now (INSERT ... SELECT generate_series), then: the product's write path
(market.prices.record_feed_prices, batches of 60 prices, a source's markets, as the ingest writes
them), the newest price read from the database (market.selectors.latest_tick with Redis missing the
key, as /api/market/price when Redis has no cached price), the history read (selectors.history,
limit 50: /history and /api/market/history), and retention of the oldest week: DROP of its
partition (market.prices.prune_ticks) against a DELETE of the same rows (prune_ticks' DELETE on one
table). Last, the time migration 0007 takes to convert the one table with its ticks.

Each database is measured in a process of its own (python -m bench.bench_storage <variant>), since
Django's database is chosen at start; it prints its figures as JSON."""

import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cryptosite.stack import BASE_DIR, free_port

from .common import Report, percentile

SOURCES = ("binance", "coinbase", "kraken", "okx")
SYMBOLS = [f"S{n:02d}" for n in range(60)]
DAYS = 30
READS = 400
WRITE_BATCHES = 400  # of 60 prices: 24,000 ticks


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class Cluster:
    """A PostgreSQL cluster of this run's own on a free loopback port, as the postgres user when
    run as root (initdb refuses root), stopped and removed at the end."""

    def __init__(self, bin_dir: Path):
        self.bin, self.port = bin_dir, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cryptosite-bench-pg-"))
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "cryptosite", "--auth=trust", "-E", "UTF8")
        # Settings of a small production server: the defaults but for memory and checkpoints.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c shared_buffers=512MB -c max_wal_size=4GB -c fsync=on"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o", options, "start")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bin / tool), *args], check=True, stdout=subprocess.DEVNULL)

    def createdb(self, name: str) -> str:
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "cryptosite", name], check=True)
        return f"postgres://cryptosite@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def run(scratch) -> Report:
    count = int(os.environ.get("BENCH_STORAGE_TICKS", "10000000"))
    report = Report(f"Ticks on PostgreSQL: {count:,} ticks partitioned by week vs one table")
    bin_dir = pg_bin()
    if bin_dir is None:
        print("  storage: skipped, no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        report.add("skipped", "no PostgreSQL binaries in /usr/lib/postgresql/*/bin", "–")
        return report
    cluster = Cluster(bin_dir)
    results = {}
    try:
        for variant in ("partitioned", "plain"):
            url = cluster.createdb(variant)
            print(f"  {variant}: loading {count:,} ticks and measuring", flush=True)
            done = subprocess.run([sys.executable, "-m", "bench.bench_storage", variant, str(count)], cwd=BASE_DIR,
                                  env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE, check=True, text=True)
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        cluster.stop()
    part, plain = results["partitioned"], results["plain"]
    report.add("bulk load (INSERT ... SELECT generate_series, indexes in place)", f"{part['load_rate']:,.0f} ticks/s",
               f"{plain['load_rate']:,.0f} ticks/s")
    report.add("table and indexes on disk", f"{part['bytes'] / 2**30:.2f} GiB ({part['partitions']} partitions)",
               f"{plain['bytes'] / 2**30:.2f} GiB")
    report.add("write path: record_feed_prices, batches of 60", f"{part['write_rate']:,.0f} ticks/s",
               f"{plain['write_rate']:,.0f} ticks/s")
    report.add("its INSERT alone (bulk_create, ignore_conflicts), batches of 60", f"{part['insert_rate']:,.0f} ticks/s",
               f"{plain['insert_rate']:,.0f} ticks/s")
    for key, what in (("latest", "newest price from the database (latest_tick, Redis missing)"),
                      ("history", "history, limit 50 (selectors.history)")):
        report.add(what, f"p50 {part[key][0]:.2f} ms, p99 {part[key][1]:.2f} ms",
                   f"p50 {plain[key][0]:.2f} ms, p99 {plain[key][1]:.2f} ms")
    report.add("retention: the oldest week's ticks removed", f"{part['prune_s'] * 1000:,.0f} ms (DROP of the partition, "
               f"{part['pruned']:,} ticks)", f"{plain['prune_s'] * 1000:,.0f} ms (DELETE, {plain['pruned']:,} ticks)")
    report.add("migration 0007 on the one table", f"{plain['convert_s']:.0f} s for {plain['convert_rows']:,} ticks", "–")
    return report


# --- in the measuring process ------------------------------------------------------------------


def _load(count: int, start: date) -> float:
    """count ticks from `start` until now, every market alike, oldest first; seconds taken."""
    from django.db import connection

    markets = len(SOURCES) * len(SYMBOLS)
    per_market = count // markets
    end_ms = int(time.time() * 1000) - 60_000  # the newest a minute ago: the write path's ticks come after
    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    step_ms = (end_ms - start_ms) // (per_market - 1)
    end_ms = start_ms + (per_market - 1) * step_ms
    sources = "ARRAY[" + ",".join(f"'{s}'" for s in SOURCES) + "]"
    symbols = "ARRAY[" + ",".join(f"'{s}'" for s in SYMBOLS) + "]"
    chunk = 1_000_000
    started = time.perf_counter()
    for first in range(0, per_market * markets, chunk):
        last = min(first + chunk, per_market * markets) - 1
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO market_pricetick (source, symbol, price, timestamp, received_at, change_pct) "
                f"SELECT ({sources})[g % {len(SOURCES)} + 1], ({symbols})[(g / {len(SOURCES)}) % {len(SYMBOLS)} + 1], "
                "100 + (g % 9973) / 100.0, ts, ts + interval '150 milliseconds', ((g % 201) - 100) / 100.0 "
                f"FROM (SELECT g, to_timestamp(({end_ms} - ({per_market} - 1 - g / {markets}) * {step_ms}) / 1000.0) AS ts "
                f"FROM generate_series({first}::bigint, {last}::bigint) g) s")
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE market_pricetick")  # as autovacuum would have left it
    return seconds


def _size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('market_pricetick')")
        size = int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_total_relation_size('market_pricetick')")  # one table: not a tree
        return size or int(cursor.fetchone()[0])


def _write_rates() -> tuple[float, float]:
    """Ticks a second through record_feed_prices, then through its INSERT alone, newer than all."""
    from django.db import transaction

    from market.domain.feeds import Trade
    from market.models import PriceTick
    from market.prices import record_feed_prices
    from market.ticks import from_ms

    start = int(time.time() * 1000)
    stored, spent = 0, 0.0
    for n in range(WRITE_BATCHES):
        source = SOURCES[n % len(SOURCES)]
        at = start + n * 1000
        trades = [Trade(s, Decimal(100 + n % 50) + Decimal(i) / 100, at) for i, s in enumerate(SYMBOLS)]
        t0 = time.perf_counter()
        stored += len(record_feed_prices(source, trades, at + 50))
        spent += time.perf_counter() - t0
    write_rate = stored / spent
    start += WRITE_BATCHES * 1000
    spent = 0.0
    for n in range(WRITE_BATCHES):
        at = from_ms(start + n * 1000)
        rows = [PriceTick(source=SOURCES[n % len(SOURCES)], symbol=s, price=101, timestamp=at, received_at=at) for s in SYMBOLS]
        t0 = time.perf_counter()
        with transaction.atomic():
            PriceTick.objects.bulk_create(rows, ignore_conflicts=True)
        spent += time.perf_counter() - t0
    return write_rate, WRITE_BATCHES * len(SYMBOLS) / spent


def _reads(fn) -> tuple[float, float]:
    rng = random.Random(11)
    samples = []
    for _ in range(READS):
        source, symbol = rng.choice(SOURCES), rng.choice(SYMBOLS)
        t0 = time.perf_counter()
        fn(source, symbol)
        samples.append((time.perf_counter() - t0) * 1000)
    return percentile(samples, 50), percentile(samples, 99)


def measure(variant: str, count: int) -> dict:
    from django.core.cache import cache
    from django.core.management import call_command

    from core import keys
    from market import partitions, selectors
    from market.models import PriceTick
    from market.prices import prune_ticks

    cache.clear()  # the other variant's newest prices
    call_command("migrate", verbosity=0)
    # The history starts on a Monday (UTC), so that its oldest week is a whole one.
    start = partitions.start_of(datetime.now(UTC).date() - timedelta(days=DAYS))
    if variant == "plain":
        call_command("migrate", "market", "0006", verbosity=0)  # migration 0007 reversed: one table
    else:
        partitions.ensure(since=start)  # the weeks the history falls on
    out = {"load_rate": count / _load(count, start), "partitions": len(partitions.partitions()) if partitions.in_use() else 0}
    out["bytes"] = _size()
    out["write_rate"], out["insert_rate"] = _write_rates()

    def latest(source, symbol):
        cache.delete(keys.latest(source, symbol))
        assert selectors.latest_tick(source, symbol) is not None

    out["latest"] = _reads(latest)
    out["history"] = _reads(lambda source, symbol: selectors.history(source, symbol, 50))
    # Retention of the oldest week: everything before the Monday after the history's first.
    cutoff = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=7)
    t0 = time.perf_counter()
    if variant == "plain":
        out["pruned"], _ = PriceTick.objects.filter(timestamp__lt=cutoff).delete()  # prune_ticks' DELETE
    else:
        out["pruned"] = prune_ticks((datetime.now(UTC) - cutoff).total_seconds() / 86_400)
    out["prune_s"] = time.perf_counter() - t0
    if variant == "plain":
        out["convert_rows"] = PriceTick.objects.count()
        t0 = time.perf_counter()
        call_command("migrate", "market", verbosity=0)
        out["convert_s"] = time.perf_counter() - t0
        assert partitions.in_use()
    return out


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")
    import django

    django.setup()
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))

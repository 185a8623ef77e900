"""Persistent price alerts evaluated at ingest: 100,000 stored alerts over 50 markets (above and
below levels near the price, change_pct over 15m/1h/1d, a quarter repeating), then polls of all 50
markets with a random walk of realistic size (0.03 % per 5 s poll), each evaluated by
alerts.services.evaluate: the Redis version read, the per-market threshold index, and the
conditional UPDATEs and delivery rows of what fired (webhooks not sent). Against, in the same run,
the naive evaluation's floor: the moved markets' alerts read by a plain query (or held in memory)
and each checked in Python by the same rule, with nothing written."""

import random
import time
from decimal import Decimal

from .common import Report, percentile

MARKETS = 50
ALERTS = 100_000
POLLS = 600
STEP_MS = 5000
WINDOWS = ("15m", "1h", "1d")
HISTORY_MS = 86_400_000


def seed(rng: random.Random, now_ms: int) -> dict[tuple[str, str], float]:
    from alerts.models import PriceAlert
    from apikeys import services as keys
    from market.models import PriceTick
    from market.ticks import from_ms

    key, _ = keys.create_key("bench-alerts", "standard")
    prices = {("binance", f"B{i:02d}"): rng.uniform(0.5, 50_000) for i in range(MARKETS)}
    markets = list(prices)
    ticks = []
    for (source, symbol), price in prices.items():  # a day of 5-minute prices walking back from now's
        for t in range(now_ms - 300_000, now_ms - HISTORY_MS - 600_000, -300_000):
            ticks.append(PriceTick(source=source, symbol=symbol, price=Decimal(f"{price:.6f}"), timestamp=from_ms(t),
                                   received_at=from_ms(t)))
            price *= 1 + rng.gauss(0, 0.0003 * 60 ** 0.5)
    PriceTick.objects.bulk_create(ticks, batch_size=5000)
    rows = []
    for n in range(ALERTS):
        source, symbol = markets[n % MARKETS]
        price, kind = prices[(source, symbol)], rng.random()
        if kind < 0.4:
            condition, threshold, window = "above", price * rng.uniform(1.002, 1.3), ""
        elif kind < 0.8:
            condition, threshold, window = "below", price * rng.uniform(0.7, 0.998), ""
        else:
            condition, threshold, window = "change_pct", rng.choice([1, 2, 3, 5, 10]) + rng.random(), rng.choice(WINDOWS)
        rows.append(PriceAlert(key=key, source=source, symbol=symbol, condition=condition, threshold=threshold, window=window,
                               repeat=rng.random() < 0.25, webhook_url="https://hooks.example.com/x", secret="whsec_bench",
                               since_ms=now_ms - 1))
    PriceAlert.objects.bulk_create(rows, batch_size=5000)
    return prices


def walk(rng: random.Random, prices: dict, now_ms: int) -> list[list]:
    from market.ticks import StoredTick

    polls, current = [], dict(prices)
    for n in range(1, POLLS + 1):
        at = now_ms + n * STEP_MS
        for market in current:
            current[market] *= 1 + rng.gauss(0, 0.0003)
        polls.append([StoredTick(s, sym, Decimal(f"{p:.6f}"), at, at) for (s, sym), p in current.items()])
    return polls


def ours(polls: list[list]) -> tuple[list[float], list[int], float]:
    from alerts import services

    services._enqueue = lambda ids: None  # webhooks are not sent here (their rows are written)
    services.forget_indexes()
    start = time.perf_counter()
    services.evaluate(polls[0])  # the first poll builds the 50 markets' indexes and windows
    build = (time.perf_counter() - start) * 1000
    times, fired = [], []
    for ticks in polls[1:]:
        start = time.perf_counter()
        fired.append(services.evaluate(ticks))
        times.append((time.perf_counter() - start) * 1000)
    return times, fired, build


def naive(polls: list[list], in_memory: bool, rounds: int) -> list[float]:
    """The same rule (level_met, change_met) applied alert by alert to the moved markets' alerts,
    read by one plain query per poll, or held in memory; the window references are given to it."""
    from alerts.models import PriceAlert
    from market import selectors
    from market.domain.alerts import PriceWindow, change_met, level_met, window_ms
    from market.domain.prices import move_pct

    def read(markets):
        return list(PriceAlert.objects.filter(source="binance", symbol__in=[m[1] for m in markets])
                    .exclude(armed=False, repeat=False)
                    .values_list("id", "symbol", "condition", "threshold", "window", "armed", "repeat", "since_ms"))

    markets = list(dict.fromkeys((t.source, t.symbol) for t in polls[0]))
    held = read(markets)
    windows = {}
    for market in markets:
        for window in WINDOWS:
            w = windows[(market[1], window)] = PriceWindow(window_ms(window))
            for point in selectors.price_points(*market, polls[0][0].timestamp_ms - window_ms(window)):
                w.add(*point)
    times = []
    for ticks in polls[1:rounds + 1]:
        start = time.perf_counter()
        rows = held if in_memory else read(markets)
        price = {t.symbol: (t.timestamp_ms, float(t.price)) for t in ticks}
        changes = {}
        for (symbol, window), w in windows.items():
            ts, p = price[symbol]
            w.add(ts, p)
            ref = w.reference(ts)
            changes[(symbol, window)] = None if ref is None else move_pct(ref[1], p)
        met, rearm = [], []
        for alert_id, symbol, condition, threshold, window, armed, repeat, since in rows:
            ts, p = price[symbol]
            ok = change_met(threshold, changes[(symbol, window)]) if window else level_met(condition, threshold, p)
            if ok and armed and since < ts:
                met.append(alert_id)
            elif not ok and not armed and repeat:
                rearm.append(alert_id)
        times.append((time.perf_counter() - start) * 1000)
    return times


def text(times: list[float]) -> str:
    return f"p50 **{percentile(times, 50):.2f} ms**, p99 {percentile(times, 99):.2f} ms"


def run(scratch) -> Report:
    rng = random.Random(11)
    now = int(time.time() * 1000) - POLLS * STEP_MS
    prices = seed(rng, now)
    polls = walk(rng, prices, now)
    report = Report(f"Price alerts at ingest ({ALERTS:,} alerts over {MARKETS} markets; {POLLS} polls of all {MARKETS} "
                    "markets, 0.03 % random walk per poll; goal ≤ 5 ms per poll)")
    times, fired, build = ours(polls)
    few = [t for t, f in zip(times, fired, strict=True) if f <= 10]
    scan_db, scan_mem = naive(polls, False, 60), naive(polls, True, POLLS)
    report.add(f"one poll evaluated (index; {sum(fired) / len(fired):.1f} fires per poll on average, max {max(fired)}, "
               "their UPDATEs and delivery rows written)", text(times),
               f"plain query + Python scan, nothing written (60 polls): {text(scan_db)}")
    report.add(f"the same, polls with at most 10 fires ({len(few)} of {len(times)})", text(few),
               f"in-memory Python scan of the moved markets, nothing written: {text(scan_mem)}")
    report.add("the 50 markets' indexes built (first poll, or after a restart)", f"{build:.0f} ms", "–")
    return report

"""Breadth: an exchange spoken through ccxt beside a native one, in the same run, against the sandbox
on loopback (a process of its own, so its work is never counted as ours).

1. The poll cycle the Celery poller runs for one exchange (market.tasks.poll_exchange: the adapter's
   fetch_quotes and record_quotes, which prices.poll_quotes pairs, then the open candles, the broadcast
   and the alerts) for N tracked markets of Binance (native) and of OKX and Bybit (ccxt), the three
   interleaved cycle by cycle. Beside it, in the same cycles: fetch + store alone (prices.poll_quotes),
   the adapter alone (fetch_quotes, as the poller calls it: a fresh event loop and HTTP client), and
   the request alone (the request(s) the adapter made, through the same seam, not decoded), so the
   adapter's own cost (decoding and parsing: ccxt's, or ours) shows apart from storage.
2. The ingest's cost per trade: the CPU of the ingest process (`python -m ingest`) per trade for the
   native feeds of Binance (candles in the feed) and Coinbase (trades only) beside OKX's through
   ccxt.pro (ingest.ccxt_connection; trades only), one at a time on the same markets and trade rate;
   and the parse cost per trade frame of ccxt.pro's OKX trade handling beside the native Binance
   feed's parser (no process, no socket: the frame's text to our Trade).

Pacing: the adapters' pacing (Binance's min_interval, ccxt's rateLimit x cost: both reserve slots in
the seam, market.exchanges.http.pace) would make back-to-back cycles wait for the previous cycle's
slot. The poller polls every 5 s, so in production the slot is always free: the pacing's state is
forgotten before each timed call (http.reset_state()), so its code runs but never waits; nothing is
patched. POLL_INTERVAL is 1 ms in this process, so every cycle stores every price (a price the
exchange does not stamp is stamped with the poll's time slot, and a second one in a slot is skipped
as already stored)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from importlib.util import find_spec

from cryptosite.stack import BASE_DIR, free_port, wait_for_port

from .common import Scratch, percentile

MARKET_COUNTS = (4, 20, 60)  # the sandbox lists 60 symbols
CYCLES = 16
POLLED = (("binance", "native"), ("okx", "ccxt"), ("bybit", "ccxt"))
LAYERS = ("request", "adapter", "store", "cycle")
# Binance's native feed carries candles; Coinbase's (native) and OKX's through ccxt.pro carry trades only, so
# the ingest moves their open candles with each stored price: Coinbase is the like-for-like native peer.
FED = (("binance", "native"), ("coinbase", "native"), ("okx", "ccxt"))
INGEST_MARKETS = 20
TRADE_PERIOD = 0.05  # a trade per market every 50 ms: 400 trades a second over 20 markets
INGEST_WINDOW = 8.0
INGEST_ROUNDS = 2  # each feed measured twice, taking turns; the lower CPU per trade is reported
WARM_ROUNDS = 20  # fetches on one warm event loop and client, for the adapter's own CPU
PARSE_FRAMES = 6000  # trade frames per parser run (100 per market), best of PARSE_RUNS runs each
PARSE_RUNS = 15


class Samples:
    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, fn) -> None:
        from market.exchanges import http

        http.reset_state()  # the previous cycle's pacing slot: free, as it is 5 s later in production
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)

    def p(self, which: str, q: float) -> float:
        return percentile(getattr(self, which), q) * 1000  # ms


class BreadthReport:
    def __init__(self):
        self.title = "Breadth: ccxt beside native (the sandbox on loopback)"
        self.poll: dict[tuple[str, int, str], Samples] = {}
        self.warm: dict[tuple[str, int], tuple[float, float]] = {}  # CPU ms p50: the request, fetch_quotes
        self.requests: dict[str, int] = {}
        self.parse: dict[str, float] = {}  # µs per trade frame
        self.ingest: dict[str, dict] = {}
        self.ingest_note = ""

    def s(self, name: str, n: int, layer: str) -> Samples:
        return self.poll[(name, n, layer)]

    def own_ms(self, name: str, n: int) -> float:
        """The adapter's own CPU in a fetch (decoding, parsing, ccxt's machinery): fetch_quotes' less the
        bare request's, on one warm event loop and client (the fresh client's ~20 ms would drown it)."""
        request, fetch = self.warm[(name, n)]
        return fetch - request

    # --- text ----------------------------------------------------------------------------------
    def adapter_table(self) -> list[str]:
        lines = ["| exchange (via) | markets | request alone, as polled: wall p50, CPU p50 | fetch_quotes, as polled: wall p50 / p95, "
                 "CPU p50 | warm loop: request CPU, fetch_quotes CPU | the adapter's own CPU per fetch | vs binance |",
                 "|---|---|---|---|---|---|---|"]
        for n in MARKET_COUNTS:
            native = self.own_ms("binance", n)
            for name, via in POLLED:
                r, a = self.s(name, n, "request"), self.s(name, n, "adapter")
                own = self.own_ms(name, n)
                ratio = "–" if name == "binance" else f"**{own - native:+.2f} ms**"  # native's is near 0: a ratio would be noise
                lines.append(f"| {name} ({via}) | {n} | {r.p('wall', 50):.1f} ms, {r.p('cpu', 50):.1f} ms | "
                             f"{a.p('wall', 50):.1f} / {a.p('wall', 95):.1f} ms, {a.p('cpu', 50):.1f} ms | "
                             f"{self.warm[(name, n)][0]:.2f} ms, {self.warm[(name, n)][1]:.2f} ms | {own:.2f} ms | {ratio} |")
        return lines

    def cycle_table(self) -> list[str]:
        lines = ["| exchange (via) | markets | fetch + store (poll_quotes): wall p50, CPU p50 | whole poll cycle: wall p50 / p95 "
                 "| cycle CPU p50 | cycle CPU per market | CPU vs binance |", "|---|---|---|---|---|---|---|"]
        for n in MARKET_COUNTS:
            native = self.s("binance", n, "cycle").p("cpu", 50)
            for name, via in POLLED:
                st, c = self.s(name, n, "store"), self.s(name, n, "cycle")
                ratio = "–" if name == "binance" else f"**{c.p('cpu', 50) / native:.2f}x**"
                lines.append(f"| {name} ({via}) | {n} | {st.p('wall', 50):.1f} ms, {st.p('cpu', 50):.1f} ms | "
                             f"{c.p('wall', 50):.0f} / {c.p('wall', 95):.0f} ms | {c.p('cpu', 50):.0f} ms | "
                             f"{c.p('cpu', 50) / n:.2f} ms | {ratio} |")
        return lines

    def ingest_table(self) -> list[str]:
        lines = ["| feed | candles in the feed | markets x trades/s | trades in the window | ingest process CPU "
                 "| CPU per trade, the lower of the runs | vs binance | vs coinbase |", "|---|---|---|---|---|---|---|---|"]
        for name, row in self.ingest.items():
            ratios = " | ".join("–" if name == peer or peer not in self.ingest else
                                f"**{row['per_trade'] / self.ingest[peer]['per_trade']:.2f}x**" for peer in ("binance", "coinbase"))
            candles = "yes (8 timeframes)" if name == "binance" else "no: the ingest moves the open candles"
            lines.append(f"| {name} ({row['via']}) | {candles} | {row['markets']} x {1 / TRADE_PERIOD:.0f} | {row['trades']:,} | "
                         f"{row['cpu']:.2f} s in {row['seconds']:.1f} s ({row['cpu'] / row['seconds'] * 100:.0f} % of a core) | "
                         f"{row['per_trade'] * 1e6:.0f} µs (runs: {', '.join(f'{r * 1e6:.0f}' for r in row['runs'])}) | {ratios} |")
        return lines

    def markdown(self) -> str:
        native = self.parse["binance"]
        out = [f"### {self.title}", "",
               f"**Poll cycle**: {CYCLES} cycles per row, the three exchanges interleaved cycle by cycle; CPU is this "
               "process's `time.process_time()` (the sandbox's is not in it). Requests per fetch: "
               + ", ".join(f"{k} {v}" for k, v in self.requests.items())
               + " (OKX's and Bybit's ticker requests answer every spot market, whatever the count asked). Pacing never "
               "waits (its slots are forgotten before each timed call; the poller's next poll is 5 s later), and "
               "POLL_INTERVAL is 1 ms so every cycle stores every price. The request and the adapter each run on a "
               "fresh event loop and HTTP client, as the poller calls them.", "",
               *self.adapter_table(), "", *self.cycle_table(), ""]
        if self.ingest:
            out += [f"**Ingest process**: `python -m ingest --feeds <one>` on {INGEST_MARKETS} markets, a trade per market "
                    f"every {TRADE_PERIOD * 1000:.0f} ms from the sandbox's feed, CPU (user + system, every thread) over "
                    f"{INGEST_WINDOW:.0f} s once live, {INGEST_ROUNDS} runs each (the feeds taking turns); trades counted as the sandbox's "
                    "trade rounds x markets. Binance's native feed also carries candles (8 timeframes a market, pushed every "
                    "2 s) and stores them; Coinbase's native feed and OKX's through ccxt.pro carry trades only, and the ingest "
                    "moves their open candles with each stored price (a market a second): Coinbase is the like-for-like "
                    "native peer.", "",
                    *self.ingest_table(), ""]
        if self.ingest_note:
            out += [self.ingest_note, ""]
        out += [f"**Parse cost per trade frame** ({PARSE_FRAMES:,} frames over 60 markets, best of {PARSE_RUNS} "
                "runs each, the two parsers taking turns; from the frame's text to our `Trade`, in this process, no socket):", "",
                "| parser | µs per trade | vs native |", "|---|---|---|",
                f"| binance native (`BinanceFeed.decode` + `parse`) | {native:.1f} | – |",
                f"| okx through ccxt.pro (its client's JSON decode, `okx.handle_message` -> `handle_trades`, then our `Trade`) "
                f"| {self.parse['okx']:.1f} | **{self.parse['okx'] / native:.1f}x** |", "", self.summary(), ""]
        return "\n".join(out)

    def summary(self) -> str:
        """ccxt/native in one paragraph, from the figures above."""
        hi = MARKET_COUNTS[-1]
        own = {name: [self.own_ms(name, n) for n in MARKET_COUNTS] for name, _ in POLLED}
        cycle = [self.s(name, n, "cycle").p("cpu", 50) / self.s("binance", n, "cycle").p("cpu", 50)
                 for name, via in POLLED if via == "ccxt" for n in MARKET_COUNTS]
        text = (f"ccxt/native: the adapter's own CPU per fetch is {min(min(v) for k, v in own.items() if k != 'binance'):.1f}-"
                f"{max(max(v) for k, v in own.items() if k != 'binance'):.1f} ms through ccxt against "
                f"{min(own['binance']):.2f}-{max(own['binance']):.2f} ms native; the whole poll cycle's CPU is "
                f"{min(cycle):.2f}-{max(cycle):.2f}x the native one's (at {hi} markets, "
                f"{self.s('binance', hi, 'cycle').p('cpu', 50):.0f} ms native, of which the fetch "
                f"{self.s('binance', hi, 'adapter').p('cpu', 50):.0f} ms)")
        if {"okx", "binance", "coinbase"} <= set(self.ingest):
            per = {name: row["per_trade"] for name, row in self.ingest.items()}
            text += (f"; the ingest process's CPU per trade through ccxt.pro is {per['okx'] / per['coinbase']:.1f}x the native "
                     f"Coinbase feed's (trades only, as OKX's) and {per['okx'] / per['binance']:.1f}x the native Binance feed's "
                     "(whose candles come in the feed)")
        return text + f"; parsing a trade frame, {self.parse['okx'] / self.parse['binance']:.1f}x."


# --- poll cycle ---------------------------------------------------------------------------------
def captured_requests(name: str, symbols: list[str]) -> list[tuple]:
    """The requests the adapter makes for one fetch_quotes (url, params, headers), seen at the seam."""
    from market import aio
    from market.exchanges import get_exchange, http

    seen, original = [], http.request

    async def spy(exchange, display, url, params=None, timeout=10.0, min_interval=0.0, headers=None):
        seen.append((url, params, headers))
        return await original(exchange, display, url, params, timeout, min_interval, headers)

    http.request = spy
    try:
        aio.run(get_exchange(name).fetch_quotes(symbols))
    finally:
        http.request = original
    return seen


async def requests(ex, wanted: list[tuple]) -> None:
    from market.exchanges import http

    for url, params, headers in wanted:
        await http.request(ex.name, ex.display, url, params, timeout=ex.timeout, headers=headers)


async def warm_fetches(ex, wanted: list[tuple], symbols: list[str]) -> tuple[float, float]:
    """CPU ms (p50) of the bare request(s) and of fetch_quotes, alternately on one event loop and client."""
    from market.exchanges import http

    request, fetch = [], []
    try:
        for i in range(WARM_ROUNDS + 3):
            for call, out in ((lambda: requests(ex, wanted), request), (lambda: ex.fetch_quotes(symbols), fetch)):
                http.reset_state()
                start = time.process_time()
                await call()
                if i >= 3:  # the first rounds warm the connection
                    out.append(time.process_time() - start)
    finally:
        await http.close_client()
    return percentile(request, 50) * 1000, percentile(fetch, 50) * 1000


def track(names: list[str], symbols: list[str]) -> None:
    """These markets tracked (and only these), their open candles seeded as a candle sync leaves them
    (the poll cycle moves them with each price)."""
    from market import selectors
    from market.domain.timeframes import TIMEFRAMES, align
    from market.models import Candle, TrackedMarket

    TrackedMarket.objects.all().delete()
    TrackedMarket.objects.bulk_create([TrackedMarket(source=n, symbol=s) for n in names for s in symbols])
    Candle.objects.all().delete()
    now, one = int(time.time() * 1000), Decimal("1")
    Candle.objects.bulk_create([
        Candle(source=n, symbol=s, timeframe=tf, open_time=align(now, tf) + k * size, open=one, high=one, low=one,
               close=one, volume=one, closed=False)
        for n in names for s in symbols for tf, size in TIMEFRAMES.items() for k in (0, 1)  # this period and the next
    ])
    selectors.forget_poll_schedule()


def measure_polls(report: BreadthReport, symbols_all: list[str]) -> None:
    from market import aio, prices, selectors
    from market.exchanges import get_exchange
    from market.tasks import poll_exchange

    names = [n for n, _ in POLLED]
    for name in names:
        aio.run(get_exchange(name).listing())  # cached for an hour in production
    for n in MARKET_COUNTS:
        symbols = symbols_all[:n]
        track(names, symbols)
        calls, wanted_by = {}, {}
        for name in names:
            ex = get_exchange(name)
            wanted = wanted_by[name] = captured_requests(name, symbols)
            report.requests[name] = len(wanted)

            async def bare(ex=ex, wanted=wanted):
                await requests(ex, wanted)

            calls[name] = {"request": lambda bare=bare: aio.run(bare()),
                           "adapter": lambda ex=ex, symbols=symbols: aio.run(ex.fetch_quotes(symbols)),
                           "store": lambda name=name, symbols=symbols: prices.poll_quotes(name, symbols, selectors.now_ms()),
                           "cycle": lambda name=name: poll_exchange(name)}
            for layer in LAYERS:  # warm-up
                calls[name][layer]()
                report.poll[(name, n, layer)] = Samples()
        for _ in range(CYCLES):
            for name in names:
                for layer in LAYERS:
                    report.s(name, n, layer).add(calls[name][layer])
        for name, via in POLLED:
            report.warm[(name, n)] = asyncio.run(warm_fetches(get_exchange(name), wanted_by[name], symbols))
            r, a, st, c = (report.s(name, n, layer) for layer in LAYERS)
            print(f"  {name} ({via}) x {n}: request {r.p('wall', 50):.1f} ms wall, {r.p('cpu', 50):.1f} ms CPU; adapter "
                  f"{a.p('wall', 50):.1f} ms wall, {a.p('cpu', 50):.1f} ms CPU (own, warm: {report.own_ms(name, n):.2f}); fetch+store "
                  f"{st.p('cpu', 50):.1f} ms CPU; cycle {c.p('wall', 50):.0f}/{c.p('wall', 95):.0f} ms wall p50/p95, "
                  f"{c.p('cpu', 50):.0f} ms CPU ({c.p('cpu', 50) / n:.2f} ms a market)", flush=True)


# --- ingest process -----------------------------------------------------------------------------
def ccxt_feed_landed() -> bool:
    return find_spec("ingest.ccxt_connection") is not None and find_spec("sandbox.okx_feed") is not None


class RoundCounter:
    """The sandbox feed's trade rounds (every market trades once a round), counted on a connection of
    its own that follows one market."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url)
        self.times: list[float] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for _ in self.ws:
                self.times.append(time.monotonic())
        except Exception:
            pass

    def between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.times)

    def close(self) -> None:
        self.ws.close()
        self.thread.join(5)


def wait_live(name: str, timeout: float, proc: subprocess.Popen) -> None:
    from market import selectors

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the ingest process of {name} exited ({proc.returncode})")
        state = selectors.feed_states().get(name) or {}
        if state.get("live_since") and selectors.feed_path(name, state)["path"] == "feed":
            return
        time.sleep(0.25)
    raise RuntimeError(f"the {name} feed did not go live within {timeout:.0f} s: {state}")


def ingest_window(scratch: Scratch, name: str, env: dict, counter: RoundCounter, markets: list[str]) -> tuple[float, float, int]:
    """One ingest process for one feed: CPU seconds over the window once live, the window, the trades in it."""
    import psutil

    track([name], markets)
    log = open(scratch.dir / f"ingest-{name}.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--feeds", name], cwd=BASE_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_live(name, 90, proc)
        time.sleep(3)  # past the resync and the first writes
        ps = psutil.Process(proc.pid)
        before, start = ps.cpu_times(), time.monotonic()
        time.sleep(INGEST_WINDOW)
        after, end = ps.cpu_times(), time.monotonic()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            print(f"  the ingest process of {name} did not stop within 30 s of SIGINT: killed", flush=True)
            proc.kill()
            proc.wait(10)
        log.close()
    cpu = (after.user - before.user) + (after.system - before.system)
    return cpu, end - start, counter.between(start, end) * len(markets)


def measure_ingest(report: BreadthReport, scratch: Scratch, rest: str, feeds: str, symbols: list[str]) -> None:
    markets = symbols[:INGEST_MARKETS]
    env = {**os.environ, "EXCHANGES": ",".join(n for n, _ in FED), "LOG_LEVEL": "WARNING",
           "BINANCE_API_URL": f"{rest}/binance", "BINANCE_FEED_URL": f"{feeds}/binance/stream",
           "COINBASE_API_URL": f"{rest}/coinbase", "COINBASE_FEED_URL": f"{feeds}/coinbase",
           "OKX_API_URL": f"{rest}/okx", "OKX_FEED_URL": f"{feeds}/okx/ws/v5/public"}
    counter = RoundCounter(f"{feeds}/binance/stream?streams={markets[0].lower()}usdt@aggTrade")
    try:
        for _ in range(INGEST_ROUNDS):  # the feeds take turns: a busy moment of the machine costs both alike
            for name, via in FED:
                cpu, seconds, trades = ingest_window(scratch, name, env, counter, markets)
                per_trade = cpu / max(trades, 1)
                row = report.ingest.setdefault(name, {"via": via, "markets": len(markets), "runs": []})
                row["runs"].append(per_trade)
                if per_trade <= min(row["runs"]):
                    row.update(trades=trades, cpu=cpu, seconds=seconds, per_trade=per_trade)
                print(f"  ingest {name} ({via}): {cpu:.2f} s CPU in {seconds:.1f} s for {trades:,} trades on "
                      f"{len(markets)} markets: {per_trade * 1e6:.0f} µs a trade", flush=True)
    finally:
        counter.close()


# --- parse cost per trade frame -----------------------------------------------------------------
def trade_frames(symbols: list[str]) -> dict[str, list[str]]:
    """Trade frames as each exchange sends them (Binance's combined-stream aggTrade, as the sandbox's
    feed prints it; OKX's v5 `trades` push, as OKX documents it), at the sandbox's prices."""
    from sandbox.server import Market

    market, now = Market(), int(time.time() * 1000)
    price = {(x, s): market.price(x, s) for x in ("binance", "okx") for s in symbols}
    binance, okx = [], []
    for i in range(PARSE_FRAMES):
        s, t, seq = symbols[i % len(symbols)], now + i, 1000 + i // len(symbols)
        binance.append(json.dumps({"stream": f"{s.lower()}usdt@aggTrade", "data": {
            "e": "aggTrade", "E": t, "s": f"{s}USDT", "a": seq, "p": f"{price[('binance', s)]:.8f}", "q": "0.01000000",
            "f": seq * 2, "l": seq * 2, "T": t, "m": False, "M": True}}, separators=(",", ":")))
        okx.append(json.dumps({"arg": {"channel": "trades", "instId": f"{s}-USDT"}, "data": [{
            "instId": f"{s}-USDT", "tradeId": str(seq), "px": format(price[("okx", s)].normalize(), "f"), "sz": "0.01",
            "side": "buy", "ts": str(t), "count": "1", "source": "0", "seqId": seq}]}, separators=(",", ":")))
    return {"binance": binance, "okx": okx}


def best_per_frame(runs: dict[str, tuple], rounds: int) -> dict[str, float]:
    """µs per frame of each parser, the best of `rounds` runs over its frames, the parsers taking turns
    (a moment of contention on a shared machine then costs every parser alike, not one)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, (run, frames) in runs.items():
            start = time.process_time()
            run(frames)
            best[name] = min(best[name], time.process_time() - start)
    return {name: best[name] / len(runs[name][1]) * 1e6 for name in runs}


def measure_parse(report: BreadthReport, symbols: list[str]) -> None:
    import ccxt.pro

    from market import aio
    from market.domain.feeds import Trade
    from market.exchanges import get_exchange
    from market.exchanges.base import dec
    from market.feeds import BinanceFeed

    frames = trade_frames(symbols)
    feed = BinanceFeed("ws://127.0.0.1:1/binance/stream")
    ids = {f"{s}USDT": s for s in symbols}

    def native(batch):
        for raw in batch:
            feed.parse(feed.decode(raw), ids, 0)

    # ccxt.pro's okx with the markets the REST adapter loaded from the sandbox, numbers as strings and
    # 100 trades kept a market, as the ingest configures it. Its client is built, never connected: each
    # frame goes in where the socket's text would, and what ccxt resolves a watch waiter with is taken.
    okx = get_exchange("okx")
    ours = {market: symbol for symbol, market in aio.run(okx.listing()).items()}  # BTC/USDT -> BTC (cached)

    async def both() -> dict[str, float]:
        pro = ccxt.pro.okx({"options": {"defaultType": "spot", "tradesLimit": 100}})
        pro.number = str
        pro.set_markets(okx.client.markets)
        client = pro.client("ws://127.0.0.1:1/okx/ws/v5/public")
        resolved = []
        client.resolve = lambda result, message_hash: resolved.append(result)

        def through_ccxt(batch):
            for raw in batch:
                client.handle_text_or_binary_message(raw)
                t = resolved.pop()[-1]
                Trade(ours[t["symbol"]], dec(t["price"]), t["timestamp"], int(t["id"]))

        try:
            return best_per_frame({"binance": (native, frames["binance"]), "okx": (through_ccxt, frames["okx"])}, PARSE_RUNS)
        finally:
            await pro.close()

    report.parse = asyncio.run(both())
    print(f"  parse per trade frame: binance native {report.parse['binance']:.1f} µs, okx via ccxt.pro "
          f"{report.parse['okx']:.1f} µs ({report.parse['okx'] / report.parse['binance']:.1f}x)", flush=True)


# --- the run ------------------------------------------------------------------------------------
def run(scratch: Scratch) -> BreadthReport:
    from django.conf import settings

    from market import selectors
    from sandbox.simulation import SYMBOLS

    report = BreadthReport()
    port, feed_port = free_port(), free_port()
    sandbox = scratch.spawn([sys.executable, "manage.py", "sandbox_exchange", "--port", str(port), "--feed-port",
                             str(feed_port), "--trade-period", str(TRADE_PERIOD)], SANDBOX="1")
    wait_for_port("127.0.0.1", port, 30, sandbox)
    wait_for_port("127.0.0.1", feed_port, 30, sandbox)
    rest, feeds = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{feed_port}"
    symbols = list(SYMBOLS)
    saved = settings.EXCHANGES, settings.EXCHANGE_API_URLS, settings.POLL_INTERVAL
    try:
        settings.EXCHANGES = list(dict.fromkeys(n for n, _ in POLLED + FED))  # feed states are read for these
        settings.EXCHANGE_API_URLS = {**settings.EXCHANGE_API_URLS, **{n: f"{rest}/{n}" for n, _ in POLLED}}
        settings.POLL_INTERVAL = 0.001
        try:
            measure_polls(report, symbols)
        finally:
            settings.POLL_INTERVAL = saved[2]
            selectors.forget_poll_schedule()
        if ccxt_feed_landed():
            measure_ingest(report, scratch, rest, feeds, symbols)
        else:
            report.ingest_note = ("The ingest process through ccxt.pro was not measured: `ingest/ccxt_connection.py` or the "
                                  "sandbox's OKX feed (`sandbox/okx_feed.py`) is not in this tree.")
        measure_parse(report, symbols)
    finally:
        settings.EXCHANGES, settings.EXCHANGE_API_URLS, settings.POLL_INTERVAL = saved
        sandbox.terminate()
        sandbox.wait(10)
    return report

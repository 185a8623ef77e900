"""Sentiment: texts per second and latency of each engine alone and through the endpoint, beside
the original server's keyword counter as a baseline.

The transformer engine: alone (ONNX Runtime and tokenizers, requests of 100 texts, on one and on
two threads); through the served endpoint (python -m cryptosite.serve, WEB_CONCURRENCY processes,
4 clients posting batches of 100); and what that load costs the hot reads: GET a fresh price
under wrk, alone and while the transformer serves, at SENTIMENT_THREADS 1 and 2 (the thread
budget a web process gives the model), SENTIMENT_NICE 10 and 0 (how much lower its threads run),
and SENTIMENT_WORKER thread and process (the model on a thread of the web process, or in a process
of its own)."""

import csv
import os
import re
import shutil
import sys
import threading
import time

from cryptosite.stack import BASE_DIR, free_port, wait_for_port

from .common import Report, summary_ms

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))

# The original data server's approach: count keywords from two small lists.
_BULL = {"bullish", "surge", "surging", "moon", "pump", "rally", "gain", "up", "buy", "growth", "rise", "great", "strong"}
_BEAR = {"bearish", "crash", "dump", "drop", "fall", "down", "sell", "loss", "decline", "weak", "fear", "plunge"}


def keyword_baseline(text: str) -> str:
    words = re.findall(r"[a-z]+", text.lower())
    bull = sum(w in _BULL for w in words)
    bear = sum(w in _BEAR for w in words)
    return "Bullish" if bull > bear else "Bearish" if bear > bull else "Neutral"


def texts() -> list[str]:
    with open(BASE_DIR / "sentiment" / "data" / "tfns" / "train.csv", newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)][:3000]


def run(scratch) -> Report:
    from django.test import Client

    from sentiment.domain.engine import analyze, default_model

    report = Report("Sentiment")
    sample = texts()
    default_model()
    for text in sample[:200]:
        analyze(text)  # warm-up

    def measure(fn):
        latencies = []
        start = time.perf_counter()
        for text in sample:
            t0 = time.perf_counter()
            fn(text)
            latencies.append(time.perf_counter() - t0)
        return len(sample) / (time.perf_counter() - start), latencies

    rate, lat = measure(analyze)
    base_rate, base_lat = measure(keyword_baseline)
    report.add("engine alone, one core", f"{rate:,.0f} texts/s, {summary_ms(lat)}",
               f"{base_rate:,.0f} texts/s, {summary_ms(base_lat)} (keyword counter)")

    client = Client()
    http_rate, http_lat = measure(lambda t: client.post("/api/sentiment/analyze", {"text": t}, content_type="application/json"))
    report.add("through the endpoint (Django stack, in process)", f"{http_rate:,.0f} texts/s, {summary_ms(http_lat)}", "–")
    batch = sample[:100]
    start = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        client.post("/api/sentiment/analyze", {"texts": batch}, content_type="application/json")
    batch_rate = rounds * len(batch) / (time.perf_counter() - start)
    report.add("through the endpoint, batches of 100", f"{batch_rate:,.0f} texts/s", "–")
    transformer(report, scratch, sample)
    return report


def transformer(report: Report, scratch, sample: list[str]) -> None:
    from django.conf import settings

    from sentiment.transformer import TransformerModel

    for threads in (1, 2):
        model = TransformerModel(settings.SENTIMENT_TRANSFORMER_DIR, threads)
        model.probabilities(sample[:100])  # warm-up
        latencies, start = [], time.perf_counter()
        for i in range(0, 1000, 100):
            t0 = time.perf_counter()
            model.probabilities(sample[i:i + 100])
            latencies.append(time.perf_counter() - t0)
        rate = 1000 / (time.perf_counter() - start)
        report.add(f"transformer engine alone, requests of 100, {threads} thread{'s' if threads > 1 else ''}",
                   f"{rate:,.0f} texts/s, {summary_ms(latencies)} a request", "–")
    if shutil.which("wrk") is None:
        report.add("transformer engine through the server", "skipped: needs wrk (make bench installs it)", "–")
        return
    from .bench_api import seed, wrk

    seed()
    workers = os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 1))
    price = "/api/market/price?symbol=BTC"
    for threads, nice, worker in ((1, 10, "thread"), (1, 0, "thread"), (2, 10, "thread"), (1, 10, "process")):
        port = free_port()
        env = {"POLL_INTERVAL": "3600", "CANDLE_SYNC_INTERVAL": "3600", "WEB_CONCURRENCY": workers,
               "SENTIMENT_THREADS": str(threads), "SENTIMENT_NICE": str(nice), "SENTIMENT_WORKER": worker}
        proc = scratch.spawn([sys.executable, "-m", "cryptosite.serve", "-b", "127.0.0.1", "-p", str(port)], **env)
        base = f"http://127.0.0.1:{port}"
        budget = f"SENTIMENT_THREADS={threads}, SENTIMENT_NICE={nice}, SENTIMENT_WORKER={worker}"
        try:
            wait_for_port("127.0.0.1", port, 60, proc)
            wrk(base + price, 10, 2)
            alone = wrk(base + price, 10)
            load = Clients(base, sample, clients=4)
            load.start()
            time.sleep(3)  # every process has loaded the model and is busy
            load.mark()
            time.sleep(SECONDS)
            served, busy, seconds = load.totals()
            load.mark()
            loaded = wrk(base + price, 10)
            served_under_reads, _, seconds_under_reads = load.stop()
        finally:
            proc.terminate()
            proc.wait(15)
        report.add(f"transformer through the server ({workers} processes, {budget}), 4 clients posting batches of 100",
                   f"{served / seconds:,.0f} texts/s ({busy} answered 503 busy); "
                   f"{served_under_reads / seconds_under_reads:,.0f} texts/s while wrk reads prices", "–")
        report.add(f"GET {price} under wrk (10 connections) while the transformer serves, {budget}",
                   f"{loaded['rps']:,.0f} req/s, p50 {loaded['p50']:.2f} ms, p99 {loaded['p99']:.2f} ms",
                   f"{alone['rps']:,.0f} req/s, p50 {alone['p50']:.2f} ms, p99 {alone['p99']:.2f} ms (alone, same server)")


class Clients:
    """`clients` threads posting batches of 100 texts to the transformer engine until stopped."""

    def __init__(self, base: str, sample: list[str], clients: int):
        self.base, self.sample, self.stopped = base, sample, threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(clients)]
        self.served = self.busy = 0
        self.lock = threading.Lock()

    def run(self, k: int) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=60) as http:
            i = k * 100
            while not self.stopped.is_set():
                batch = [self.sample[(i + j) % len(self.sample)] for j in range(100)]
                i += 400
                response = http.post("/api/sentiment/analyze", json={"texts": batch, "engine": "transformer"})
                with self.lock:
                    if response.status_code == 200:
                        self.served += len(response.json()["results"])
                    elif response.status_code == 503:
                        self.busy += 1
                    else:
                        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    def start(self) -> None:
        self.started = time.perf_counter()
        for t in self.threads:
            t.start()

    def mark(self) -> None:
        """Count from now."""
        with self.lock:
            self.served = self.busy = 0
            self.started = time.perf_counter()

    def totals(self) -> tuple[int, int, float]:
        with self.lock:
            return self.served, self.busy, time.perf_counter() - self.started

    def stop(self) -> tuple[int, int, float]:
        totals = self.totals()
        self.stopped.set()
        for t in self.threads:
            t.join(60)
        return totals

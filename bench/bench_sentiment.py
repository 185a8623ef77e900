"""Sentiment: texts per second and latency of the engine alone and through the endpoint, beside
the original server's keyword counter as a baseline."""

import csv
import re
import time

from cryptosite.stack import BASE_DIR

from .common import Report, summary_ms

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
    return report

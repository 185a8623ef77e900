"""The probe that found scoring unbounded, against the application as served: four texts of 9,000
digits (36 KB, well under the 64 KiB body limit) were answered after 6.2 s, and meanwhile every
other request to that server process waited as long. One server process, so the other requests
share it with the probe."""

import threading
import time

import httpx
import pytest

from tests.e2e.conftest import serving

pytestmark = pytest.mark.e2e

PROBE = {"texts": ["7" * 9_000] * 4}
QUICK = 1.0  # seconds: the probe took 6.2
SERVERS = {"uvicorn": (), "daphne": ("--server", "daphne")}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def base_url(request, tmp_path_factory):
    with serving(tmp_path_factory.mktemp(request.param), *SERVERS[request.param], WEB_CONCURRENCY="1",
                 RATE_LIMIT="100000/m") as (port, _proc):
        yield f"http://127.0.0.1:{port}"


def timed(call) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def test_four_texts_of_9000_digits_are_answered_quickly_and_read_as_neutral(base_url):
    response, took = timed(lambda: httpx.post(f"{base_url}/api/sentiment/analyze", json=PROBE, timeout=30))
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 4
    assert all(r["sentiment"] == "Neutral" and r["keywords"] == {"bullish": 0, "bearish": 0, "total": 0} for r in results)
    assert took < QUICK, f"answered after {took:.1f} s"


def test_coins_is_not_held_up_while_the_probe_is_scored_again_and_again(base_url):
    probes: list[tuple[int, float]] = []
    started, done = threading.Event(), threading.Event()

    def probe_until_done() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            started.set()
            while not done.is_set():
                response, took = timed(lambda: client.post("/api/sentiment/analyze", json=PROBE))
                probes.append((response.status_code, took))

    prober = threading.Thread(target=probe_until_done)
    prober.start()
    started.wait(5)
    waits = []
    try:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for _ in range(5):
                time.sleep(0.05)  # a probe is under way, or the next one about to be
                response, took = timed(lambda: client.get("/coins"))
                assert response.status_code == 200
                waits.append(took)
    finally:
        done.set()
        prober.join(120)
    assert max(waits) < 0.5, f"/coins waited {max(waits):.1f} s"
    assert probes and all(status == 200 and took < QUICK for status, took in probes), probes

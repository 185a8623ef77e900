"""PostgreSQL restarts under the running system (`make demo`'s processes on a PostgreSQL of the
test's own): the API answers 503 with the contract's body while it is down and /health names it,
polling resumes by itself when it is back, and every price a subscriber was sent is stored once."""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from websockets.sync.client import connect

from cryptosite.stack import free_port, wait_for_port

from .conftest import RunningStack

pytestmark = pytest.mark.e2e

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
needs_postgres = pytest.mark.skipif(not PG_BIN or os.geteuid() != 0 or not shutil.which("runuser"),
                                    reason="Debian's PostgreSQL server (and root, to run it as postgres) is not here")


class OwnPostgres:
    def __init__(self):
        self.bin, self.port = PG_BIN[-1], free_port()
        # Outside pytest's private temporary folder: the postgres user must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="cryptosite-pg-"))
        self.directory.chmod(0o755)
        self.data = self.directory / "pg"
        self.data.mkdir()
        shutil.chown(self.data, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-U", "cryptosite", "--auth=trust", "-E", "UTF8")
        self.start()
        subprocess.run([f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "cryptosite", "demo"],
                       check=True)

    @property
    def url(self) -> str:
        return f"postgres://cryptosite@127.0.0.1:{self.port}/demo"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{self.bin}/{tool}", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w",
                          "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data}", "start")
        wait_for_port("127.0.0.1", self.port, 30)

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "immediate",
                        "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.directory, ignore_errors=True)


@needs_postgres
def test_the_system_rides_out_a_postgresql_restart(tmp_path):
    postgres = OwnPostgres()
    stack = RunningStack(tmp_path, DEMO_DATABASE_URL=postgres.url)
    received: list[dict] = []
    stop = threading.Event()
    try:
        stack.wait_healthy()

        def listen():
            with connect(f"ws://127.0.0.1:{stack.port}/ws") as ws:
                ws.send(json.dumps({"type": "subscribe", "symbols": ["BTC", "ETH"]}))
                while not stop.is_set():
                    try:
                        message = json.loads(ws.recv(1))
                    except TimeoutError:
                        continue
                    if message["type"] == "price_update":
                        received.append(message)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(3)

        postgres.stop()
        try:
            health = stack.http.get("/health")
            assert health.status_code == 503 and health.json()["checks"]["database"] == "down"
            history = stack.http.get("/history", params={"symbol": "BTC", "source": "Binance"})
            assert history.status_code == 503 and set(history.json()) >= {"error", "timestamp"}
            # Candles already rendered may still be served from their document; never a 500.
            candles = stack.http.get("/api/market/ohlc", params={"symbol": "ETH", "timeframe": "1h", "limit": 5})
            assert candles.status_code in (200, 503), candles.text
            time.sleep(3)  # several polls fail meanwhile
        finally:
            postgres.start()

        back, deadline = len(received), time.monotonic() + 60
        while stack.http.get("/health").json()["status"] != "ok" or len(received) < back + 4:
            assert time.monotonic() < deadline, "polling did not resume after the database came back"
            time.sleep(0.5)
        stop.set()
        listener.join(5)
    finally:
        stop.set()
        stack.stop()
        try:
            with psycopg.connect(postgres.url.replace("postgres://", "postgresql://")) as db:
                stored = db.execute("SELECT source, symbol, timestamp FROM market_pricetick").fetchall()
        finally:
            postgres.remove()
    keys = [(m["source"], m["symbol"], m["timestamp"]) for m in received]
    assert len(keys) == len(set(keys)), "a subscriber was sent the same price twice"
    stored_ms = {(source, symbol, round(ts.timestamp() * 1000)) for source, symbol, ts in stored}
    assert len(stored) == len(stored_ms)
    missing = [k for k in keys if k not in stored_ms]
    assert not missing, f"sent to subscribers but not stored: {missing[:5]}"

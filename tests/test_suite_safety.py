"""The suite empties the Redis it uses before every test: it must never be a developer's own."""

import os
import subprocess
import sys

import redis

from cryptosite.stack import BASE_DIR
from tests.conftest import OwnRedis


def test_an_exported_redis_url_is_never_touched_by_the_suite(tmp_path):
    theirs = OwnRedis(tmp_path)  # stands for the Redis a developer's shell points REDIS_URL at
    try:
        client = redis.Redis.from_url(theirs.url)
        client.set("precious", "1")
        env = {**os.environ, "REDIS_URL": theirs.url}
        env.pop("TEST_REDIS_URL", None)
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/market/test_tasks.py"],
                             cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert client.get("precious") == b"1" and client.dbsize() == 1
        client.close()
    finally:
        theirs.stop()

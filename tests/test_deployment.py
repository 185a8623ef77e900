"""Production configuration: settings fail loudly, deploy checks are clean, compose is valid."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from cryptosite.stack import BASE_DIR

PROD = {"DEBUG": "false", "SECRET_KEY": "a-real-secret-key-for-tests-" + "x" * 40, "ALLOWED_HOSTS": "example.com"}


def manage(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=120)


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", env_extra={"DEBUG": "false"})
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_short_or_development_secret_key():
    result = manage("check", env_extra={"DEBUG": "false", "SECRET_KEY": "short"})
    assert result.returncode != 0 and "SECRET_KEY must be a real secret" in result.stderr


def test_the_deploy_checklist_is_clean_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_extra=PROD)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_settings_are_reported_by_system_checks():
    result = manage("check", env_extra={"EXCHANGES": "binance,mtgox", "RATE_LIMIT": "lots"})
    assert result.returncode != 0
    assert "Unknown exchange in EXCHANGES: mtgox" in result.stderr and "Invalid RATE_LIMIT" in result.stderr


def test_compose_runs_postgres_redis_web_worker_and_exactly_one_beat_from_one_image():
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    app = [services[name] for name in ("web", "worker", "beat", "migrate")]
    assert all(s.get("build") == "." and s.get("image") == "cryptosite:latest" for s in app)
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "beat" in services["beat"]["command"] and "worker" in services["worker"]["command"]
    env = services["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
    assert env["DEBUG"] == "false"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="Debian's docker-compose is not installed")
def test_docker_compose_validates_the_file():
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=BASE_DIR, capture_output=True, text=True,
                            env={**os.environ, "SECRET_KEY": PROD["SECRET_KEY"]})
    assert result.returncode == 0, result.stderr


def test_every_setting_in_env_example_is_read_by_the_settings():
    names = [line.split("=", 1)[0] for line in (BASE_DIR / ".env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    settings_src = (BASE_DIR / "cryptosite" / "settings.py").read_text()
    stack_src = (BASE_DIR / "cryptosite" / "stack.py").read_text()
    missing = [n for n in names if f'"{n}"' not in settings_src and f'"{n}"' not in stack_src]
    assert not missing

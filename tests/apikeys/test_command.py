"""`manage.py apikey create|list|revoke`: for scripts, with clear errors and a non-zero exit."""

import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from apikeys.models import ApiKey
from cryptosite.stack import BASE_DIR

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_key_once_and_stores_only_its_hash():
    out, err = run("create", "alice", "--tier", "pro")
    key = out.strip()
    stored = ApiKey.objects.get(name="alice")
    assert stored.tier == "pro" and key.startswith(stored.prefix + ".")
    assert key not in stored.hashed_key and ApiKey.objects.is_valid(key)
    assert "cannot be shown again" in err


def test_create_without_a_tier_takes_the_first_configured():
    run("create", "bob")
    assert ApiKey.objects.get(name="bob").tier == "standard"


def test_list_shows_names_tiers_and_status_never_the_keys():
    key = run("create", "alice", "--tier", "pro")[0].strip()
    run("create", "bob")
    run("revoke", "bob")
    out = run("list")[0]
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert lines[0][:4] == ["name", "prefix", "tier", "status"]
    assert [(row[0], row[2], row[3]) for row in lines[1:]] == [("alice", "pro", "active"), ("bob", "standard", "revoked")]
    assert key not in out and key.split(".")[1] not in out


def test_revoke_makes_the_key_invalid():
    key = run("create", "alice")[0].strip()
    out = run("revoke", "alice")[0]
    assert "Revoked alice" in out
    assert not ApiKey.objects.is_valid(key)


@pytest.mark.parametrize("args,message", [
    (("create", "alice", "--tier", "gold"), "Unknown tier: 'gold'"),
    (("create", "taken"), "A key named 'taken' exists already"),
    (("revoke", "nobody"), "No key named 'nobody'"),
])
def test_mistakes_are_clear_errors(args, message):
    run("create", "taken")
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_mistake_exits_non_zero_from_the_command_line(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("DEMO", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "manage.py", "apikey", "revoke", "nobody"], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "No key named 'nobody'" in done.stderr
    created = subprocess.run([sys.executable, "manage.py", "apikey", "create", "script"], cwd=BASE_DIR, env=env,
                             capture_output=True, text=True)
    assert created.returncode == 0 and len(created.stdout.strip().split(".")) == 2

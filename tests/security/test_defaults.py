"""Safe defaults, tried as a new user starts it: `make run` (python -m cryptosite.stack) with nothing
configured serves no debug page, listens on loopback only and signs with a secret of its own; the
compose file publishes on loopback and believes no forwarded header."""

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from cryptosite.stack import BASE_DIR, free_port, wait_for_port

pytestmark = pytest.mark.e2e

CONFIGURED = ("DEBUG", "HOST", "SECRET_KEY", "DEMO", "REDIS_URL", "DATABASE_URL", "TRUSTED_PROXIES", "METRICS_TOKEN")


def listening_addresses(port: int) -> set[str]:
    """The local addresses a socket listens on for this port (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK_V4 = "0100007F"  # 127.0.0.1, as /proc/net/tcp writes it


@pytest.fixture(scope="module")
def new_install(tmp_path_factory):
    """`python -m cryptosite.stack` as `make run` starts it, with none of the settings above set
    (the machine cannot reach the exchanges: /health says degraded, which is all this needs)."""
    tmp = tmp_path_factory.mktemp("new-install")
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED}
    env.update(PORT=str(port), EMBEDDED_REDIS_PORT=str(redis_port), DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
               SECRET_KEY_FILE=str(tmp / "secret_key"), PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"), FEEDS="",
               WORKER_CONCURRENCY="2")
    (tmp / "metrics").mkdir()
    log = open(tmp / "stack.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "cryptosite.stack"], cwd=BASE_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, 120, proc)
        yield port, tmp
    finally:
        proc.send_signal(2)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_new_install_listens_on_loopback_only(new_install):
    port, _ = new_install
    assert listening_addresses(port) == {LOOPBACK_V4}


def test_a_new_install_writes_a_secret_of_its_own_readable_by_its_owner_only(new_install):
    _, tmp = new_install
    secret = tmp / "secret_key"
    assert len(secret.read_text().strip()) >= 50
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_new_install_shows_no_debug_page(new_install):
    port, _ = new_install
    response = httpx.get(f"http://127.0.0.1:{port}/widgets/no-such-widget/", timeout=10)
    assert response.status_code == 404
    # Django's debug 404 lists every URL pattern ("Using the URLconf defined in ...").
    assert "URLconf" not in response.text and "api/market" not in response.text
    crash = httpx.get(f"http://127.0.0.1:{port}/api/nothing/here", timeout=10)
    assert crash.status_code == 404 and crash.json()["error"]


def test_with_debug_on_a_debug_page_reaches_this_machine_only(tmp_path):
    """DEBUG=true asked for: a request a proxy passed on from elsewhere still gets no debug page."""
    from tests.e2e.conftest import serving

    with serving(tmp_path, "--workers", "1", DEBUG="true") as (port, _):
        local = httpx.get(f"http://127.0.0.1:{port}/widgets/no-such-widget/", timeout=10)
        proxied = httpx.get(f"http://127.0.0.1:{port}/widgets/no-such-widget/", timeout=10,
                            headers={"X-Forwarded-For": "203.0.113.9"})
    assert local.status_code == proxied.status_code == 404
    assert "URLconf" in local.text and "URLconf" not in proxied.text


def a_non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_a_new_install_cannot_be_reached_from_the_network(new_install):
    port, _ = new_install
    address = a_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=2).close()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="Debian's docker-compose is not installed")
def test_compose_publishes_on_loopback_and_believes_no_forwarded_header():
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED + ("PORT", "USE_X_FORWARDED_PROTO", "NUM_PROXIES")}
    env["SECRET_KEY"] = "a-real-secret-key-for-tests-" + "x" * 40
    result = subprocess.run(["docker-compose", "config"], cwd=BASE_DIR, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    web = services["web"]
    published = web["ports"][0]
    if isinstance(published, dict):
        assert published["host_ip"] == "127.0.0.1"
    else:
        assert str(published).startswith("127.0.0.1:")
    for name, service in services.items():
        environment = service.get("environment") or {}
        if "SECRET_KEY" not in environment:
            continue  # postgres, redis
        assert not environment.get("TRUSTED_PROXIES"), name
        assert "NUM_PROXIES" not in environment, name
        assert environment["DEBUG"] == "false", name
        assert str(environment["USE_X_FORWARDED_PROTO"]).lower() == "false", name


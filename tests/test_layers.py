"""The import graph points one way: the layering contract in pyproject.toml ([tool.importlinter]:
the wiring on top, the apps, core at the bottom, pure domain layers) holds, and no module imports
one that imports it back (grimp, import-linter's own graph; imports inside functions count too);
a production server neither installs nor loads the sandbox exchange."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from cryptosite.stack import BASE_DIR

PACKAGES = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


def test_the_layering_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=BASE_DIR, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def cycles(graph) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(grimp.build_graph(*PACKAGES)) == []


def test_a_production_server_neither_installs_nor_loads_the_sandbox_exchange():
    """Without DEMO (or the suite's SANDBOX), the sandbox app is not installed, and none of its
    modules is loaded by the web server's application, the URLs or the Celery app."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEMO", "SANDBOX")}
    env.update(DEBUG="false", SECRET_KEY="a-real-secret-key-for-tests-" + "x" * 40, DJANGO_SETTINGS_MODULE="cryptosite.settings")
    code = ("import sys, django; django.setup(); import cryptosite.asgi, cryptosite.urls, cryptosite.celery; "
            "from django.conf import settings; "
            "print('sandbox' in settings.INSTALLED_APPS, sorted(m for m in sys.modules if m.split('.')[0] == 'sandbox'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "[]"]


MAX_MODULE_LINES = 450  # a module a newcomer reads in one sitting; past it, it holds two things


def test_no_module_of_the_product_is_over_450_lines():
    long = {}
    for package in PACKAGES:
        for path in (BASE_DIR / package).rglob("*.py"):
            if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES:
                long[str(path.relative_to(BASE_DIR))] = lines
    assert not long, f"split by what each part does: {long}"

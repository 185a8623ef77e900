"""No module imports another library's private names (a leading underscore): an upgrade may change
or remove them without notice (django-ratelimit's `_split_rate`/`rate_re` were read this way, and
`"10/0m"` then divided by zero). Where a measured need goes into a library's internals, it is an
attribute reached in serving/ (the one place: tests/serving/test_internals_stay_here.py), pinned
to the versions it was written for and tested (tests/serving/test_pins.py), never an import."""

import ast
import tomllib

from cryptosite.stack import BASE_DIR

OURS = {*tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"],
        "bench", "tests", "manage"}
SKIP = {".venv", ".venv-train", "node_modules", "migrations", ".git", "staticfiles", "var"}


def project_modules():
    for path in BASE_DIR.rglob("*.py"):
        if not SKIP.intersection(path.relative_to(BASE_DIR).parts):
            yield path


def private_imports(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] not in OURS:
            found += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
            if any(part.startswith("_") and not part.startswith("__") for part in node.module.split(".")):
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] not in OURS and any(p.startswith("_") for p in a.name.split(".")[1:])]
    return found


def test_no_module_imports_another_librarys_private_names():
    offenders = {str(path.relative_to(BASE_DIR)): found for path in project_modules() if (found := private_imports(path))}
    assert not offenders

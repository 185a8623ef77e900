"""System check serving.W001: a library a serving module relies on is installed at another version
(major.minor) than the one in the module's WRITTEN_FOR. Registered by streaming.checks, so it runs
at start (`python -m cryptosite.serve` runs the checks before serving) and in `manage.py check`.

The pins are read from the modules' source, not imported: importing them would load daphne, Twisted
and uvicorn into every process that runs the checks, whichever server it is.
"""

import ast
from importlib import metadata
from pathlib import Path

from django.core import checks

HERE = Path(__file__).parent
NOT_SEAMS = {"__init__", "checks"}


def seams() -> list[str]:
    """The modules of this package that rely on a library's internals (all but this one)."""
    return sorted(path.stem for path in HERE.glob("*.py") if path.stem not in NOT_SEAMS)


def written_for(module: str) -> dict[str, str]:
    """The module's WRITTEN_FOR ({} when it declares none)."""
    tree = ast.parse((HERE / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name) and target.id == "WRITTEN_FOR" for target in node.targets):
            return ast.literal_eval(node.value)
    return {}


def installed(distribution: str) -> str | None:
    """The installed version's major.minor (None: not installed)."""
    try:
        return ".".join(metadata.version(distribution).split(".")[:2])
    except metadata.PackageNotFoundError:
        return None


def mismatches() -> list[tuple[str, str, str, str | None]]:
    """(module, library, written for, installed) for every pin the installed version does not match."""
    return [(module, library, pinned, found)
            for module in seams()
            for library, pinned in written_for(module).items()
            if (found := installed(library)) != pinned]


@checks.register(checks.Tags.compatibility)
def pinned_library_versions(app_configs, **kwargs):
    return [
        checks.Warning(
            f"serving.{module} was written for {library} {pinned}, but {found or 'none'} is installed",
            hint=(f"Check what serving/{module}.py relies on in {library} (its docstring; tests/serving/test_pins.py "
                  f"checks each) against {library} {found}, then update its WRITTEN_FOR."),
            obj=f"serving.{module}",
            id="serving.W001",
        )
        for module, library, pinned, found in mismatches()
    ]

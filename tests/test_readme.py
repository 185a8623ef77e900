"""The README's "Code layout" is the tree: every package and module is named under its package, and
every folder it names exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"__init__", "__main__", "apps", "conftest"}
SKIPPED_DIRS = {"migrations", "management", "templatetags", "commands", "__pycache__", "model", "data", "static",
                "templates"}


def _layout() -> dict[str, str]:
    """{folder: its text} from the README's Code layout block (`market/` and `market/domain/` keys)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Code layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    top = current = None
    for line in block.splitlines():
        match = re.match(r"^(\s*)([a-z_]+/)\s", line + " ")
        if match and (not match.group(1) or len(match.group(1)) == 2):
            name = match.group(2)
            current = name if not match.group(1) else top + name
            if not match.group(1):
                top = name
            entries[current] = line
        elif current:
            entries[current] += " " + line
    return entries


def _packages() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob("*/__init__.py") if p.parent.name not in {"tests", "bench"})


def test_every_package_and_module_is_in_the_code_layout():
    layout = _layout()
    missing = []
    for package in _packages():
        for folder in [package, *sorted(d for d in package.iterdir() if (d / "__init__.py").exists()
                                        and d.name not in SKIPPED_DIRS)]:
            key = str(folder.relative_to(ROOT)) + "/"
            # a small folder may be told in its package's entry: "api/ (views, serializers)"
            text = layout.get(key) or (layout[f"{package.name}/"] if f"{folder.name}/" in layout.get(f"{package.name}/", "")
                                       else None)
            if text is None:
                missing.append(f"{key} (a folder)")
                continue
            for module in sorted(folder.glob("*.py")):
                if module.stem not in SKIPPED and not re.search(rf"\b{re.escape(module.stem)}\b", text):
                    missing.append(f"{key}{module.name}")
    assert not missing, "README.md's Code layout does not name:\n" + "\n".join(missing)


def test_every_folder_the_code_layout_names_exists():
    gone = [name for name in _layout() if not (ROOT / name).is_dir()]
    assert not gone, f"README.md's Code layout names folders that are gone: {gone}"

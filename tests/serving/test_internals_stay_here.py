"""serving/ is the one package that reaches into other libraries' internals. No module imports a
library's private name (tests/security/test_no_private_imports.py); here, outside serving, no
module of the server reads or writes a private attribute (`obj._name`) that none of our own modules
defines, which is what reaching into a library looks like once its object is in hand."""

import ast
import tomllib

from cryptosite.stack import BASE_DIR

PACKAGES = [p for p in tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"] if p != "serving"]
SKIP = {"migrations"}
# Public despite the underscore: Django's documented Model._meta API, namedtuple's methods, os._exit.
PUBLIC = {"_meta", "_replace", "_make", "_asdict", "_fields", "_exit"}
# Known uses outside serving/, each with its reason: none.
KNOWN: set[tuple[str, str]] = set()


def modules(*packages: str):
    for package in packages:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if not SKIP.intersection(path.relative_to(BASE_DIR).parts):
                yield path, ast.parse(path.read_text(), str(path))


def names_we_define(trees) -> set[str]:
    """Every name our modules define: functions, classes, variables, attributes assigned, arguments."""
    defined = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.arg):
                defined.add(node.arg)
    return defined


def test_outside_serving_no_module_reaches_into_a_librarys_private_attributes():
    trees = list(modules(*PACKAGES, "serving"))
    ours = names_we_define(trees)
    found = sorted(
        f"{path.relative_to(BASE_DIR)}:{node.lineno}: .{node.attr}"
        for path, tree in trees if path.relative_to(BASE_DIR).parts[0] != "serving"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
        and node.attr not in ours | PUBLIC and (str(path.relative_to(BASE_DIR)), node.attr) not in KNOWN
    )
    assert not found, "a library's internals, outside serving/ (move the use there, pinned and tested):\n" + "\n".join(found)


def test_the_check_sees_what_serving_reaches_into():
    """The same scan over serving/ finds its known uses (so the test above is not vacuous)."""
    trees = list(modules(*PACKAGES, "serving"))
    ours = names_we_define([(path, tree) for path, tree in trees if path.relative_to(BASE_DIR).parts[0] != "serving"])
    reached = {node.attr for path, tree in trees if path.relative_to(BASE_DIR).parts[0] == "serving"
               for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr.startswith("_")}
    assert {"_group_key", "_get_connection_pool", "_servers"} <= reached - ours

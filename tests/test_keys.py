"""Every Redis key is named in core/keys.py: no other module of the product builds one."""

import ast
import re
from pathlib import Path

from core import keys

ROOT = Path(__file__).resolve().parent.parent
KEYS_MODULE = ROOT / "core" / "keys.py"
PACKAGES = ["core", "cryptosite", "market", "streaming", "alerts", "apikeys", "sentiment", "serving", "ingest"]


def _product_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != KEYS_MODULE and "migrations" not in path.parts:
                yield path


def _fstring_heads(tree: ast.AST) -> set[str]:
    """The literal text each f-string starts with, up to its first colon (`latest:` of f"latest:{s}")."""
    heads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            match = re.match(r"[a-z][a-z-]*:", str(node.values[0].value))
            if match:
                heads.add(match.group())
    return heads


KEY_NAMES = _fstring_heads(ast.parse(KEYS_MODULE.read_text()))


def test_the_key_module_names_the_keys_this_test_looks_for():
    assert {"latest:", "feed:", "received:", "poll-error:", "lock:", "book:", "alerts-version:"} <= KEY_NAMES


def test_no_other_module_builds_a_redis_key():
    offenders = []
    for path in _product_modules():
        source = path.read_text()
        where = path.relative_to(ROOT)
        for head in _fstring_heads(ast.parse(source)) & KEY_NAMES:
            offenders.append(f"{where}: builds a {head} key")
        for reach in ("make_key(", "KEY_PREFIX"):
            if reach in source and where.parts[0] not in ("cryptosite", "serving"):
                offenders.append(f"{where}: {reach}")
    assert not offenders, "name these keys in core/keys.py:\n" + "\n".join(offenders)


def test_every_redis_key_starts_with_the_deployments_prefix():
    """A demo and a production stack may share one Redis: nothing of one is read by the other."""
    prefix = keys.prefix()
    assert prefix  # the suite's stack has one, as every deployment does
    raw = [keys.book_watch_key(), keys.document_key("price", "binance", "BTC"), keys.lock_key("poll:binance"),
           keys.rate_counter_key("http", 100, 60, "1.2.3.4", 60), keys.ws_connections_key("1.2.3.4"),
           keys.api_keys_version_key(), keys.api_key_day_key("abc", "2026-12-04"), keys.api_keys_last_used_key(),
           keys.alerts_version_key("binance", "BTC")]
    assert all(key.startswith(prefix + ":") for key in raw), raw
    assert len(set(raw)) == len(raw)
    assert keys.document_key("price", "binance", "BTC") != keys.document_key("price", "binance", "ETH")

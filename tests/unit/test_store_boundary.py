"""Redis is a contract too: every key is built, and every command sent, in one typed layer
(shared/store). Outside it, in services/ and the rest of shared/, no module may

  - reach the store's raw client, namespace or key builder (`.state.r`, `.state.ns`,
    `.state.key(`, also through an object hanging off the store: `rt.state.conflicts.r`),
  - import redis,
  - carry a Lua script or register one (`register_script`, `redis.call`).

The exceptions are listed below, each with its reason; an exception no longer needed fails
too, so the list cannot go stale.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "shared")
STORE = Path("shared/store")
RAW = {"r", "ns", "key"}  # the store's client, namespace and key builder
LUA = re.compile(r"register_script|redis\.p?call\s*\(")

# (module, rule) -> why it may.
ALLOWED: dict[tuple[str, str], str] = {
    ("shared/messaging/outages.py", "imports redis"):
        "it tells outages from a file's own failures: redis-py's ConnectionError, TimeoutError "
        "and BusyLoadingError raised through the store must be recognised as 'Redis is down' "
        "(the message waits, its attempts unspent), which needs the exception classes",
}


def _chain(node: ast.expr) -> list[str]:
    """`a.b.c` -> ["a", "b", "c"] (calls and subscripts on the way are looked through)."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            if isinstance(node, ast.Name):
                parts.append(node.id)
            return parts[::-1]


def violations(source: str) -> set[str]:
    """The rules `source` breaks, named as in ALLOWED."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(
                a.name == "redis" or a.name.startswith("redis.") for a in node.names):
            found.add("imports redis")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "redis" or node.module.startswith("redis.")):
            found.add("imports redis")
        elif isinstance(node, ast.Attribute) and node.attr in RAW:
            chain = _chain(node)
            if "state" in chain[:-1]:
                found.add(f"uses the store's raw .{node.attr}")
    if LUA.search(source):
        found.add("carries a Lua script")
    return found


def _modules() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if STORE not in rel.parents:
                out.append(rel)
    return out


def test_no_module_outside_the_store_touches_redis():
    broken, used = [], set()
    for rel in _modules():
        for rule in sorted(violations((ROOT / rel).read_text(encoding="utf-8"))):
            if (rel.as_posix(), rule) in ALLOWED:
                used.add((rel.as_posix(), rule))
            else:
                broken.append(f"{rel}: {rule}")
    assert not broken, "Redis outside shared/store (add a typed store method):\n" + \
        "\n".join(broken)
    assert used == set(ALLOWED), f"exceptions no longer needed: {set(ALLOWED) - used}"


def test_the_scan_sees_what_it_looks_for():
    """The rules catch each form (else the test above would pass on anything)."""
    assert violations("import redis.asyncio as aioredis") == {"imports redis"}
    assert violations("from redis.exceptions import RedisError") == {"imports redis"}
    assert violations("x = rt.state.r.get(k)") == {"uses the store's raw .r"}
    assert violations("k = self.rt.state.key('idcache', cid)") == {"uses the store's raw .key"}
    assert violations("s = Store(rt.state.r, rt.state.ns)") == {"uses the store's raw .r",
                                                               "uses the store's raw .ns"}
    assert violations("n = request.app.state.rt.state.conflicts.r") == {
        "uses the store's raw .r"}
    assert violations("state.r.hget(a, b)") == {"uses the store's raw .r"}
    assert violations("s = r.register_script(LUA)") == {"carries a Lua script"}
    assert violations("LUA = \"return redis.call('GET', KEYS[1])\"") == {"carries a Lua script"}
    # What is fine: the typed store, FastAPI's app.state, a message's routing key, the broker.
    assert violations("await rt.state.conflicts.held_paths(cid)\n"
                      "s = request.app.state.settings\n"
                      "k = message.routing_key\nn = broker.ns\nv = d.key\n") == set()

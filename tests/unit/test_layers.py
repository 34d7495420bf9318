"""The packages stay in their layers (shared/__init__.py): every import of our own code, read from
the source with `ast` (TYPE_CHECKING imports and imports inside functions too), goes to the
same package or to one the table allows; services never import one another; no two modules of
ours import each other."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the packages it may import (besides itself)
BASE = {"shared.errors", "shared.contracts"}
ALLOWED: dict[str, set[str]] = {
    "shared.errors": set(),
    "shared.contracts": set(),
    "shared.sync": BASE,
    "shared.config": BASE | {"shared.sync"},
    "shared.observability": BASE,
    "shared.sources": BASE | {"shared.sync", "shared.config", "shared.observability"},
    "shared.storage": BASE | {"shared.config"},
    "shared.store": BASE | {"shared.sync", "shared.config", "shared.observability"},
    "shared.messaging": BASE | {"shared.config", "shared.observability"},
    "shared.app": BASE | {"shared.sync", "shared.config", "shared.observability",
                          "shared.sources", "shared.storage", "shared.store",
                          "shared.messaging"},
}
SHARED = set(ALLOWED)


def package_of(module: str) -> str | None:
    """The unit a module belongs to: `shared.<pkg>` (errors, contracts: their own) or
    `services.<service>`."""
    parts = module.split(".")
    if parts[0] not in ("shared", "services") or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def modules() -> dict[str, Path]:
    out = {}
    for top in ("shared", "services"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports_of(module: str, path: Path) -> set[str]:
    """Dotted names of our modules that `module` imports (a `from pkg import mod` names mod)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    known = modules()
    return {name for name in found if name in known and name != module}


MODULES = modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_stay_in_their_layer(module):
    unit = package_of(module)
    if unit is None:
        return
    bad = []
    for target in sorted(imports_of(module, MODULES[module])):
        other = package_of(target)
        if other is None or other == unit or target in ("shared", "services"):
            continue
        if unit.startswith("services."):
            if other.startswith("services."):
                bad.append(f"{target} (services never import one another)")
        elif other not in ALLOWED.get(unit, set()):
            bad.append(target)
    assert not bad, f"{module} ({unit}) imports up or across its layer: {bad}"


def test_every_shared_package_is_in_the_table():
    packages = {package_of(m) for m in MODULES if m.startswith("shared.")}
    assert packages <= SHARED, packages - SHARED


def test_no_import_cycles_between_modules():
    graph = defaultdict(set)
    for module, path in MODULES.items():
        for target in imports_of(module, path):
            if not target.startswith(module + "."):  # a package re-exporting its own module
                graph[module].add(target)
    cycles = sorted({tuple(sorted((a, b))) for a in list(graph) for b in graph[a]
                     if a in graph.get(b, ())})
    assert not cycles, f"modules importing each other: {cycles}"

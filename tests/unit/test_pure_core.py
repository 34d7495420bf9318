"""The pure core stays pure: importing every module of shared/sync in a clean interpreter loads
nothing beyond what `shared.contracts` and `shared.errors` load themselves (the standard library,
pydantic for the wire contracts), besides shared/sync's own modules."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
              for p in (ROOT / "shared" / "sync").rglob("*.py"))


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter (this one's, run from the repository) holds after
    running `statement`. What the interpreter loads at start is in both measurements."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_every_core_module_is_found():
    assert {"shared.sync", "shared.sync.model", "shared.sync.one_way",
            "shared.sync.two_way", "shared.sync.keys"} <= set(CORE)


def test_the_core_imports_only_the_standard_library_errors_and_contracts():
    base = loaded_after("import shared.contracts, shared.errors")
    core = loaded_after("\n".join(f"import {m}" for m in CORE))
    extra = core - base
    assert set(CORE) <= core
    assert extra - {"shared"} <= {m for m in extra if m == "shared.sync"
                                  or m.startswith("shared.sync.")}, sorted(extra)

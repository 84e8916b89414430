"""The import layering of docs/README's layout table holds: each room imports only the rooms below it, the
application layer (app/) sits on top and nothing below imports it, and no module is loaded from a name string
(importlib), which would hide a dependency from this check."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph  # noqa: E402  (scripts/ is not a package: the drawing tool and this test share its reader)
CORE = "essop"       # essop/: configuration, checks, LFSR parameters, the FP16 format
#: folder -> the essop packages its modules may import (besides the core and itself).
ALLOWED = {
    "essop": set(),
    "golden": set(),
    "hdl": set(),
    "sim": {"golden", "hdl"},
    "synth": {"golden", "hdl"},
    "training": {"golden", "hdl"},
    "app": {"golden", "hdl", "sim", "synth", "training"},
    "formal": {"hdl"},
}
ROOMS = set(ALLOWED) - {CORE}


def _imports(path: Path) -> set[str]:
    """The rooms (folders) whose modules an import statement of `path` names, lazy imports included."""
    return {room for room in map(import_graph.package_of, import_graph.module_imports(path)) if room}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.py"))


@pytest.mark.parametrize("folder", list(ALLOWED))
def test_each_room_imports_only_the_rooms_below_it(folder):
    allowed = ALLOWED[folder] | {folder, CORE}
    bad = {}
    for path in _modules(folder):
        rel = path.relative_to(ROOT).as_posix()
        extra = _imports(path) - allowed
        if extra:
            bad[rel] = sorted(extra)
    assert not bad, f"imports across the layering: {bad}"


def test_the_package_graph_has_no_cycle():
    """scripts/import_graph.py draws this graph for docs/architecture.md."""
    assert import_graph.cycles(import_graph.graph(ROOT)) == []


def test_no_module_is_loaded_by_a_name_string():
    users = [path.relative_to(ROOT).as_posix() for folder in ALLOWED for path in _modules(folder)
             if "importlib" in path.read_text()]
    assert users == []

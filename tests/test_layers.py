"""The import layering of docs/README's layout table holds: each room imports only the rooms below it, the
application layer (app/) sits on top and nothing below imports it, and no module is loaded from a name string
(importlib), which would hide a dependency from this check."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
}
#: The two entry points of the core package that hand over to the command line.
ENTRY_SHIMS = {"essop/cli.py", "essop/__main__.py"}
ROOMS = set(ALLOWED) - {CORE}


def _imports(path: Path) -> set[str]:
    """Every essop.<x> module an import statement of `path` names (core modules as 'essop')."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "essop":
                names |= {f"essop.{alias.name}" for alias in node.names}
    rooms = set()
    for name in names:
        parts = name.split(".")
        if parts[0] != "essop":
            continue
        room = parts[1] if len(parts) > 1 and parts[1] in ROOMS else CORE
        rooms.add(room)
    return rooms


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.py"))


@pytest.mark.parametrize("folder", list(ALLOWED))
def test_each_room_imports_only_the_rooms_below_it(folder):
    allowed = ALLOWED[folder] | {folder, CORE}
    bad = {}
    for path in _modules(folder):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ENTRY_SHIMS:
            continue
        extra = _imports(path) - allowed
        if extra:
            bad[rel] = sorted(extra)
    assert not bad, f"imports across the layering: {bad}"


def test_entry_shims_only_hand_over_to_the_command_line():
    for rel in ENTRY_SHIMS:
        assert _imports(ROOT / rel) <= {"app", CORE}, rel


def test_no_module_is_loaded_by_a_name_string():
    users = [path.relative_to(ROOT).as_posix() for folder in ALLOWED for path in _modules(folder)
             if "importlib" in path.read_text()]
    assert users == []

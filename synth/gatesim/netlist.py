"""Netlist reader: the structural Verilog Yosys writes (``write_verilog -noattr -noexpr``).

One reader for both netlists of the flow: the flat gate-level netlist (every instance a library cell; the
gate-level simulation and the power interpolation walk it) and the hierarchical one (instances of the top
that are submodules; the area split names them). Yosys writes one instance as::

    NAND2_X1 _1123_ (          or          \\essop.cell_0_0  cell_0_0 (
      .A1(_0443_),                            .count({ \\count$196[5] , ... }),
      .ZN(\\cell_0_3.count[0] )               ...
    );                                      );

Verilog escaped names (``\\name`` up to the next blank) are kept without the backslash and the blank.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Netlist", "read_netlist", "parse_netlist", "submodule_instances"]

_KEYWORDS = ("module", "input", "output", "inout", "wire", "reg", "assign")


@dataclass
class Netlist:
    """One module of a netlist."""

    top: str
    """The module's name."""
    inputs: list[str]
    """Primary input bits (``name[i]`` or ``name``)."""
    outputs: list[str]
    instances: list[tuple[str, str, dict[str, str]]]
    """(instance name, cell or module type, pin -> net bit), in file order; constants as ``1'h0`` / ``1'h1``; a
    multi-bit connection is kept as written, blanks removed (``{count$196[5],...}``)."""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """``assign lhs = rhs;`` single-bit connections (evaluated after every pass)."""
    wide_assigns: list[str] = field(default_factory=list)
    """``assign`` statements over several bits (``{...}`` or ranges), as written: a flat gate-level netlist has
    none, and the gate-level simulation refuses one that has."""


def _net(s: str) -> str:
    s = s.strip()
    if s.startswith("\\"):
        s = s[1:]
    return re.sub(r"\s+", "", s)


def _module(name: str, body: str) -> Netlist:
    aliases, wide = [], []
    for lhs, rhs in re.findall(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;", body, re.M):
        if "{" in lhs + rhs or ":" in lhs + rhs:
            wide.append(f"{lhs} = {rhs}")
        else:
            aliases.append((_net(lhs), _net(rhs)))
    ports = {"input": [], "output": []}
    for kind, rng, pname in re.findall(r"^\s*(input|output)\s+(?:signed\s+)?(\[\d+:\d+\])?\s*(\\\S+|\w+)\s*;",
                                       body, re.M):
        pname = _net(pname)
        if rng:
            hi, lo = map(int, rng[1:-1].split(":"))
            ports[kind] += [f"{pname}[{i}]" for i in range(min(hi, lo), max(hi, lo) + 1)]
        else:
            ports[kind].append(pname)
    instances = []
    for ctype, iname, conns in re.findall(r"^\s*(\\\S+|\w+)\s+(\\\S+|\w+)\s*\((.*?)\);", body, re.M | re.S):
        if ctype in _KEYWORDS:
            continue
        pins = {p: _net(n) for p, n in re.findall(r"\.(\w+)\(([^()]*)\)", conns)}
        instances.append((_net(iname), _net(ctype), pins))
    return Netlist(name, ports["input"], ports["output"], instances, aliases, wide)


def read_netlist(path) -> dict[str, Netlist]:
    """Every module of the file, by name."""
    text = Path(path).read_text()
    modules = {}
    for m in re.finditer(r"^module\s+(\\\S+|\w+)\s*\(", text, re.M):
        end = text.index("endmodule", m.start())
        name = _net(m.group(1))
        modules[name] = _module(name, text[m.start():end])
    return modules


def parse_netlist(path, top: str) -> Netlist:
    """The module ``top`` of the netlist file."""
    modules = read_netlist(path)
    if top not in modules:
        raise ValueError(f"module {top!r} not in {path}")
    return modules[top]


def submodule_instances(path, top: str) -> dict[str, str]:
    """Instance name -> module name for the instances of ``top`` that are modules of the same file (the
    hierarchy Yosys kept), in file order."""
    modules = read_netlist(path)
    if top not in modules:
        raise ValueError(f"module {top!r} not in {path}")
    return {inst: ctype for inst, ctype, _ in modules[top].instances if ctype in modules and ctype != top}

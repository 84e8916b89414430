"""Liberty reader: what the flow needs to know about a standard-cell library, read from its ``.lib`` text.

For each cell: its pins and their directions, each output's boolean ``function``, whether it is a flip-flop
(an ``ff (...)`` group) or a latch (``latch (...)``), its clock pins, the flip-flop's ``next_state``, its
area, and whether it is an integrated clock-gating cell (``clock_gating_integrated_cell``) and which of its
pins is the gated clock's input. For the library: its name and the units of its numbers (time, capacitance,
leakage power), normalised to seconds, farads and watts.

Every question "is this cell a flip-flop?" in the flow is answered here, from the ``ff`` group: library cell
names differ (``DFFRNQ_X1``, ``DFFHQNx1_ASAP7_75t_R``, ``sky130_fd_sc_hd__dfxtp_1``), the Liberty structure
does not. The reader is line-based: the four shipped libraries (synth/pdk) write one attribute or group
header per line, which is what Yosys and OpenSTA write too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LibCell", "LibertyUnits", "parse_liberty", "read_units", "library_name", "cell_library",
           "compile_function"]


@dataclass
class LibCell:
    inputs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    """Output pin -> Liberty function (``IQ`` for a flip-flop's Q; empty when the file gives none)."""
    sequential: bool = False
    """A flip-flop or a latch: its outputs are state, not a function of its inputs."""
    clock_pins: list[str] = field(default_factory=list)
    next_state: str | None = None
    ff: bool = False
    """The cell has an ``ff`` group: an edge-triggered flip-flop (what the flow counts as one)."""
    latch: bool = False
    area: float = 0.0
    """Cell area in the library's area unit (um^2 in all four shipped libraries)."""
    clock_gating: str = ""
    """Value of ``clock_gating_integrated_cell`` (e.g. ``latch_posedge``): empty unless a clock-gating cell."""
    gated_clock_pin: str | None = None
    """The clock-gating cell's clock input (``clock_gate_clock_pin : true``)."""
    gate_enable_pin: str | None = None
    """The clock-gating cell's enable (``clock_gate_enable_pin``)."""
    gate_test_pin: str | None = None
    """The clock-gating cell's scan/test enable (``clock_gate_test_pin``), ORed with the enable; None: none."""
    gate_out_pin: str | None = None
    """The clock-gating cell's gated clock output (``clock_gate_out_pin``)."""


@dataclass(frozen=True)
class LibertyUnits:
    """A library's units as multipliers to SI: seconds, farads, watts per Liberty unit."""

    time_s: float
    capacitance_f: float
    leakage_power_w: float


_PREFIX = {"": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}


def _unit(value: str, base: str) -> float:
    """``"1ps"`` -> 1e-12 (``base`` = "s"), ``"1nW"`` -> 1e-9 (``base`` = "W"); case of the prefix as written."""
    m = re.fullmatch(rf"\s*([\d.]+)\s*([munpf]?){base}\s*", value, re.I)
    if m is None:
        raise ValueError(f"cannot read the Liberty unit {value!r} (expected a number and a prefix of {base})")
    # Liberty writes "1ps", "1pW", "1ff"/"pf": the prefix is a lower-case letter whatever the file's case.
    return float(m.group(1)) * _PREFIX[m.group(2).lower()]


def read_units(path) -> LibertyUnits:
    """The units in the library header (before its first cell)."""
    time = cap = leak = None
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if re.match(r"cell\s*\(", s):
            break
        m = re.match(r"time_unit\s*:\s*\"([^\"]+)\"", s)
        if m:
            time = _unit(m.group(1), "s")
        m = re.match(r"leakage_power_unit\s*:\s*\"([^\"]+)\"", s)
        if m:
            leak = _unit(m.group(1), "W")
        m = re.match(r"capacitive_load_unit\s*\(\s*([\d.]+)\s*,\s*\"?(\w+)\"?\s*\)", s)
        if m:
            # (1, ff) and (1.0000000000, "pf"): the unit word is a prefix and an F.
            cap = float(m.group(1)) * _unit("1" + m.group(2), "f")
    missing = [n for n, v in (("time_unit", time), ("capacitive_load_unit", cap), ("leakage_power_unit", leak))
               if v is None]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} in the library header")
    return LibertyUnits(time, cap, leak)


def library_name(path) -> str:
    """The name in ``library (NAME) {`` (OpenSTA addresses cells as NAME/CELL)."""
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*library\s*\(\s*\"?([^\s\")]+)", line)
            if m:
                return m.group(1)
    raise ValueError(f"{path}: no library group")


def cell_library(paths, cell: str) -> str:
    """The name of the library (among the files ``paths``) that defines ``cell``: OpenSTA names a cell by the
    library it was read from (ASAP7 is three libraries, its clock-gating cell is in the SEQ one)."""
    pattern = re.compile(rf"\s*cell\s*\(\s*\"?{re.escape(cell)}\"?\s*\)")
    for path in paths:
        with open(path) as f:
            if any(pattern.match(line) for line in f):
                return library_name(path)
    raise ValueError(f"cell {cell!r} is in none of {[str(p) for p in paths]}")


def parse_liberty(paths) -> dict[str, LibCell]:
    """Cells of the Liberty files: pins, directions, functions, flip-flops, latches, areas, clock gating."""
    cells: dict[str, LibCell] = {}
    for path in paths:
        cell = pin = None
        direction = None
        for line in Path(path).read_text().splitlines():
            s = line.strip()
            m = re.match(r"cell\s*\(\s*\"?([^\s\")]+)\"?\s*\)", s)
            if m:
                cell = cells.setdefault(m.group(1), LibCell())
                pin = None
                continue
            if cell is None:
                continue
            m = re.match(r"(ff|latch)\s*\(", s)
            if m:
                cell.sequential = True
                if m.group(1) == "ff":
                    cell.ff = True
                else:
                    cell.latch = True
                continue
            m = re.match(r"next_state\s*:\s*\"([^\"]*)\"", s)
            if m:
                cell.next_state = m.group(1)
                continue
            m = re.match(r"area\s*:\s*([\d.eE+-]+)", s)
            if m and pin is None:
                cell.area = float(m.group(1))
                continue
            m = re.match(r"clock_gating_integrated_cell\s*:\s*\"?(\w+)", s)
            if m:
                cell.clock_gating = m.group(1)
                continue
            m = re.match(r"pin\s*\(\s*\"?([^\s\")]+)\"?\s*\)", s)
            if m:
                pin, direction = m.group(1), None
                continue
            if pin is None:
                continue
            m = re.match(r"direction\s*:\s*\"?(\w+)", s)
            if m:
                direction = m.group(1)
                if direction == "input" and pin not in cell.inputs:
                    cell.inputs.append(pin)
                elif direction == "output":
                    cell.outputs.setdefault(pin, "")
                continue
            m = re.match(r"function\s*:\s*\"([^\"]*)\"", s)
            if m and direction == "output":
                cell.outputs[pin] = m.group(1)
                continue
            if re.match(r"clock\s*:\s*\"?true", s):
                cell.clock_pins.append(pin)
            elif re.match(r"clock_gate_clock_pin\s*:\s*\"?true", s):
                cell.gated_clock_pin = pin
            elif re.match(r"clock_gate_enable_pin\s*:\s*\"?true", s):
                cell.gate_enable_pin = pin
            elif re.match(r"clock_gate_test_pin\s*:\s*\"?true", s):
                cell.gate_test_pin = pin
            elif re.match(r"clock_gate_out_pin\s*:\s*\"?true", s):
                cell.gate_out_pin = pin
    return cells


def compile_function(func: str, pins: list[str]):
    """A Liberty boolean function as a Python callable over NumPy bool arrays: ``f(values, n)``, ``values``
    mapping each input pin to a bool array of n cycles. Liberty's ``!``/``'`` (not), ``*``/``&`` (and),
    ``+``/``|`` (or), ``^`` (xor) and the constants 0 and 1."""
    expr = func.replace("!", " ~").replace("*", " & ").replace("+", " | ")
    expr = re.sub(r"([A-Za-z_][A-Za-z0-9_]*)\s*'", r"(~\1)", expr)
    for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr):
        if tok not in pins:
            raise ValueError(f"Liberty function {func!r} uses {tok!r}, not an input pin of the cell")
    expr = re.sub(r"\b0\b", "_F", re.sub(r"\b1\b", "_T", expr))
    code = compile(expr.strip(), func, "eval")

    def f(values: dict, n: int):
        env = dict(values, _F=np.zeros(n, bool), _T=np.ones(n, bool))
        out = eval(code, {"__builtins__": {}}, env)
        return np.broadcast_to(np.asarray(out, bool), (n,))
    return f

"""VCD reader: the one place the flow reads a value change dump (the RTL simulation's, essop.synth.activity).

Parsing is pyvcd's (``vcd.reader.tokenize``, the package Amaranth writes its VCDs with; pinned in
requirements.txt). On top of it, the two views the flow needs:

- ``sample``: every signal bit once per clock cycle, just before each rising edge of the clock (or, for a
  combinational design, before each multiple of the input period): the cycle-level values the gate-level
  simulation starts from;
- ``toggle_rate``: the mean number of bit changes per signal bit per cycle over the whole dump (the design-wide
  rate of the one-number activity model, kept as a column).

Names: a variable is named by its scopes below the design's top, joined with '.' (the simulator's VCD nests
the design in a testbench scope: ``bench`` / ``top`` / ...). Verilog escaped identifiers (``\\i_norm.neg``,
which Amaranth writes for the fields of a struct-shaped signal) are read as the name without the backslash,
as IEEE 1364 defines them; a variable with a bit range in its declaration is named with that range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vcd.reader import TokenKind, tokenize

__all__ = ["VcdVar", "Vcd", "read_vcd", "sample", "toggle_rate"]


@dataclass(frozen=True)
class VcdVar:
    scope: tuple[str, ...]
    """Enclosing scopes, outermost first (the testbench's included)."""
    name: str
    """The declared reference (with its bit range, if the declaration has one)."""
    ident: str
    """Identifier code: several declarations may share one (aliases of one signal)."""
    width: int


@dataclass
class Vcd:
    vars: list[VcdVar]
    """Every declaration, in file order."""
    changes: dict[str, list[tuple[int, str]]]
    """Identifier code -> [(time, value as a binary string: '0', '1', 'x', 'z', or bits, MSB first)]."""

    def end_time(self) -> int:
        return max(t for ch in self.changes.values() for t, _ in ch)


def read_vcd(path) -> Vcd:
    """Declarations and value changes of a VCD file (real and string variables are declared, never changed)."""
    variables: list[VcdVar] = []
    changes: dict[str, list[tuple[int, str]]] = {}
    scope: list[str] = []
    time = 0
    with open(path, "rb") as f:
        for tok in tokenize(f):
            kind = tok.kind
            if kind is TokenKind.CHANGE_SCALAR or kind is TokenKind.CHANGE_VECTOR:
                ident, value = tok.data.id_code, tok.data.value
                # pyvcd gives a vector with only 0/1 digits as an int, one with x/z as a string.
                changes.setdefault(ident, []).append((time, value if isinstance(value, str) else f"{value:b}"))
            elif kind is TokenKind.CHANGE_TIME:
                time = tok.data
            elif kind is TokenKind.SCOPE:
                scope.append(tok.data.ident)
            elif kind is TokenKind.UPSCOPE:
                scope.pop()
            elif kind is TokenKind.VAR:
                var = tok.data
                variables.append(VcdVar(tuple(scope), var.ref_str, var.id_code, var.size))
    return Vcd(variables, changes)


def _as_vcd(source) -> Vcd:
    return source if isinstance(source, Vcd) else read_vcd(source)


def _to_int(value: str) -> int:
    # Unknown (x) and high-impedance (z) bits read as 0: the gate-level simulation is two-valued.
    if value in "xzXZ":
        return 0
    return int(value.replace("x", "0").replace("z", "0"), 2)


def sample(source, clock: str | None = "clk", period_fs: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Per-bit values of every signal once per cycle: bit name (``sig[i]``; a 1-bit signal also plain ``sig``)
    -> bool array [cycles], and the number of cycles. Sampled at the last change strictly before each rising
    edge of ``clock`` (or, with ``clock`` None, before each multiple of ``period_fs`` up to the last change).
    ``source``: a path or a ``Vcd``. Scope 0 is the testbench, scope 1 the design's top; names are below it."""
    vcd = _as_vcd(source)
    names: dict[str, tuple[str, int]] = {}
    for var in vcd.vars:
        # The first declaration of a name wins (an alias declared later in a submodule names the same bits).
        names.setdefault(".".join(var.scope[2:] + (var.name,)), (var.ident, var.width))
    if clock is not None:
        ch = vcd.changes[names[clock][0]]
        times = [t for (t, v), (_, prev) in zip(ch[1:], ch) if v == "1" and prev == "0"]
    else:
        end = vcd.end_time()
        times = list(range(period_fs, end + period_fs + 1, period_fs))
    times = np.array(times)
    bits: dict[str, np.ndarray] = {}
    for name, (ident, width) in names.items():
        ch = vcd.changes.get(ident)
        if not ch:
            continue
        t = np.array([c[0] for c in ch])
        # index of the last change strictly before each sample time
        idx = np.searchsorted(t, times, side="left") - 1
        vals = np.array([_to_int(v) for _, v in ch], dtype=object)
        sampled = np.where(idx >= 0, vals[np.maximum(idx, 0)], 0)
        for i in range(width):
            bits[f"{name}[{i}]"] = np.array([(int(v) >> i) & 1 for v in sampled], dtype=bool)
        if width == 1:
            bits[name] = bits[f"{name}[0]"]
    return bits, len(times)


def toggle_rate(source, cycles: int, exclude=("clk", "rst")) -> float:
    """Mean toggles per bit per cycle over every signal (each identifier code once; a signal declared under
    a name in ``exclude`` anywhere is left out): bit changes between consecutive values / (bits * cycles)."""
    vcd = _as_vcd(source)
    widths: dict[str, int] = {}
    skip: set[str] = set()
    for var in vcd.vars:
        if var.name in exclude:
            skip.add(var.ident)
        elif var.ident not in widths:
            widths[var.ident] = var.width
    toggles = 0
    for ident, width in widths.items():
        if ident in skip:
            continue
        prev = None
        for _, value in vcd.changes.get(ident, ()):
            value = value.rjust(width, "0")
            if prev is not None:
                toggles += sum(a != b for a, b in zip(prev, value))
            prev = value
    bits = sum(widths.values())
    if bits == 0 or cycles <= 0:
        raise ValueError("no signals or no cycles to measure activity over")
    return toggles / (bits * cycles)


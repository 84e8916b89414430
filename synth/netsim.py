"""Per-net switching activity of a synthesised netlist, from the RTL simulation of the workload.

The Debian OpenSTA 2.0.17 cannot take it itself: it has no VCD/SAIF reader, its ``set_power_activity -pins``
wrapper calls an undefined ``get_pins_error``, and activities set on register outputs through
``sta::set_power_pin_activity`` are overwritten by its own propagation (checked: annotating every ``Q`` pin with
0 or 0.2 gives the same power). So the flow measures the activity of every net itself:

1. The RTL's VCD (Amaranth simulator, zero delay) is sampled once per clock cycle, just before each rising
   edge (combinational designs: at the end of each input period). This gives each primary input and each
   register output bit — Yosys keeps register names in the flattened netlist, ``\\cell_3_4.count[2]`` for the
   VCD's ``cell_3_4.count`` bit 2 — cycle by cycle.
2. Every other net is computed from those, cycle by cycle, by evaluating the Liberty ``function`` of every
   combinational cell in topological order (NumPy, all cycles at once).
3. Self-check: a flip-flop's D input computed in cycle t must equal its Q output sampled in cycle t + 1. The
   fraction of flip-flop bits that pass is reported (``mapping_check``); a flip-flop whose Q was not found in
   the VCD is simulated from its D instead (iterated to a fixed point from zero state, see ``_settle``).

The toggle rate of a net is its number of changes between consecutive cycle samples / (cycles - 1): a
zero-delay, glitch-free rate, at most 1 per cycle.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LibCell", "parse_liberty", "Netlist", "parse_netlist", "sample_vcd", "NetActivity",
           "net_activity"]


@dataclass
class LibCell:
    inputs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    """Output pin -> Liberty function (``IQ`` for a flip-flop's Q)."""
    sequential: bool = False
    clock_pins: list[str] = field(default_factory=list)
    next_state: str | None = None


def parse_liberty(paths) -> dict[str, LibCell]:
    """Cells of the Liberty files: pins, directions, functions, flip-flops."""
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
            if re.match(r"(ff|latch)\s*\(", s):
                cell.sequential = True
                continue
            m = re.match(r"next_state\s*:\s*\"([^\"]*)\"", s)
            if m:
                cell.next_state = m.group(1)
                continue
            m = re.match(r"pin\s*\(\s*\"?([^\s\")]+)\"?\s*\)", s)
            if m:
                pin, direction = m.group(1), None
                continue
            if pin is None:
                continue
            m = re.match(r"direction\s*:\s*(\w+)", s)
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
            if re.match(r"clock\s*:\s*true", s):
                cell.clock_pins.append(pin)
    return cells


def _compile(func: str, pins: list[str]):
    """A Liberty boolean function as a Python callable over NumPy bool arrays."""
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


@dataclass
class Netlist:
    top: str
    inputs: list[str]
    """Primary input bits (``name[i]`` or ``name``)."""
    outputs: list[str]
    instances: list[tuple[str, str, dict[str, str]]]
    """(instance name, cell type, pin -> net bit) ; constants as ``1'h0`` / ``1'h1``."""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """``assign lhs = rhs;`` single-bit connections (evaluated after every pass)."""


def _net(s: str) -> str:
    s = s.strip()
    if s.startswith("\\"):
        s = s[1:]
    return re.sub(r"\s+", "", s)


def parse_netlist(path, top: str) -> Netlist:
    """The flat gate-level netlist Yosys wrote (``write_verilog -noattr -noexpr``, one module)."""
    text = Path(path).read_text()
    start = re.search(rf"^module\s+\\?{re.escape(top)}\s*\(", text, re.M)
    if start is None:
        raise ValueError(f"module {top!r} not in {path}")
    body = text[start.start():text.index("endmodule", start.start())]
    aliases = []
    for lhs, rhs in re.findall(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;", body, re.M):
        if "{" in lhs + rhs or ":" in lhs + rhs:
            raise ValueError(f"{path}: only single-bit assign statements are handled, not {lhs} = {rhs}")
        aliases.append((_net(lhs), _net(rhs)))
    ports = {"input": [], "output": []}
    for kind, rng, name in re.findall(r"^\s*(input|output)\s+(?:signed\s+)?(\[\d+:\d+\])?\s*(\\\S+|\w+)\s*;",
                                      body, re.M):
        name = _net(name)
        if rng:
            hi, lo = map(int, rng[1:-1].split(":"))
            ports[kind] += [f"{name}[{i}]" for i in range(min(hi, lo), max(hi, lo) + 1)]
        else:
            ports[kind].append(name)
    instances = []
    for ctype, iname, conns in re.findall(r"^\s*(\w+)\s+(\\\S+|\w+)\s*\((.*?)\);", body, re.M | re.S):
        if ctype in ("module", "input", "output", "wire", "reg"):
            continue
        pins = {p: _net(n) for p, n in re.findall(r"\.(\w+)\(([^()]*)\)", conns)}
        instances.append((_net(iname), ctype, pins))
    return Netlist(top, ports["input"], ports["output"], instances, aliases)


def _vcd_values(path) -> tuple[dict[str, tuple[str, int]], dict[str, list[tuple[int, str]]]]:
    """name -> (id, width) for every variable (scopes below the simulated top joined with '.'), and
    id -> [(time, value)]."""
    names: dict[str, tuple[str, int]] = {}
    changes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    scope: list[str] = []
    time = 0
    with open(path) as f:
        for line in f:
            if line.startswith("$scope"):
                scope.append(line.split()[2])
                continue
            if line.startswith("$upscope"):
                scope.pop()
                continue
            if line.startswith("$var"):
                parts = line.split()
                # scope[0] is the testbench, scope[1] the design's top.
                name = ".".join(scope[2:] + [parts[4]])
                names.setdefault(name, (parts[3], int(parts[2])))
                continue
            c = line[:1]
            if c == "#":
                time = int(line[1:])
            elif c in "bB":
                value, ident = line[1:].split()
                changes[ident].append((time, value))
            elif c in "01xzXZ":
                changes[line[1:].strip()].append((time, c))
    return names, changes


def sample_vcd(path, clock: str | None = "clk", period_fs: int | None = None):
    """Per-bit values of every VCD signal once per cycle: bit name (``sig[i]``, 1-bit signals also plain
    ``sig``) -> bool array [cycles]. Sampled at the last change strictly before each rising edge of ``clock``
    (or, with ``clock`` None, before each multiple of ``period_fs``)."""
    names, changes = _vcd_values(path)
    if clock is not None:
        cid = names[clock][0]
        times = [t for (t, v), (_, prev) in zip(changes[cid][1:], changes[cid]) if v == "1" and prev == "0"]
    else:
        end = max(t for ch in changes.values() for t, _ in ch)
        times = list(range(period_fs, end + period_fs + 1, period_fs))
    times = np.array(times)
    bits: dict[str, np.ndarray] = {}
    for name, (ident, width) in names.items():
        ch = changes.get(ident)
        if not ch:
            continue
        t = np.array([c[0] for c in ch])
        # index of the last change strictly before each sample time
        idx = np.searchsorted(t, times, side="left") - 1
        vals = np.array([int(v.replace("x", "0").replace("z", "0"), 2) if v not in "xzXZ" else 0
                         for _, v in ch], dtype=object)
        sampled = np.where(idx >= 0, vals[np.maximum(idx, 0)], 0)
        for i in range(width):
            arr = np.array([(int(v) >> i) & 1 for v in sampled], dtype=bool)
            bits[f"{name}[{i}]"] = arr
        if width == 1:
            bits[name] = bits[f"{name}[0]"]
    return bits, len(times)


@dataclass
class NetActivity:
    rate: dict[str, float]
    """Net bit -> toggles per cycle."""
    cycles: int
    flops: int
    flops_from_vcd: int
    """Flip-flops whose Q was found in the VCD."""
    mapping_check: float
    """Fraction of (flip-flop, cycle) pairs where the computed D equals the next sampled Q."""
    inputs_from_vcd: int
    inputs: int
    registers: dict[str, tuple[list[str], float]] = field(default_factory=dict)
    """Register name (Q net without its bit index) -> (its flip-flop instances, fraction of cycles in which
    any of its bits changes: the duty of an ideal clock-gating enable)."""

    def mean(self) -> float:
        return float(np.mean(list(self.rate.values()))) if self.rate else 0.0


def net_activity(netlist: Netlist, cells: dict[str, LibCell], bits: dict[str, np.ndarray],
                 cycles: int, clock: str | None = "clk") -> NetActivity:
    n = cycles
    values: dict[str, np.ndarray] = {"1'h0": np.zeros(n, bool), "1'h1": np.ones(n, bool)}
    found_in = 0
    for p in netlist.inputs:
        if p == clock:
            continue
        if p in bits:
            values[p] = bits[p]
            found_in += 1
        else:
            values[p] = np.zeros(n, bool)
    comb, flops = [], []
    for inst in netlist.instances:
        lib = cells.get(inst[1])
        if lib is None:
            raise ValueError(f"cell type {inst[1]!r} of instance {inst[0]!r} is not in the Liberty files")
        (flops if lib.sequential else comb).append(inst)
    found_q = 0
    missing = []
    for name, ctype, pins in flops:
        lib = cells[ctype]
        for out, func in lib.outputs.items():
            net = pins.get(out)
            if net is None:
                continue
            q = bits.get(net)
            if q is None:
                missing.append((net, func))
                values[net] = np.zeros(n, bool)
            else:
                values[net] = ~q if func.strip() in ("IQN", "!IQ") else q
                found_q += 1
    # topological order of the combinational cells
    drivers = {}
    for k, (_, ctype, pins) in enumerate(comb):
        for out in cells[ctype].outputs:
            if out in pins:
                drivers[pins[out]] = k
    deps = [set() for _ in comb]
    users = defaultdict(list)
    for k, (_, ctype, pins) in enumerate(comb):
        for p in cells[ctype].inputs:
            d = drivers.get(pins.get(p))
            if d is not None and d not in deps[k]:
                deps[k].add(d)
                users[d].append(k)
    indeg = [len(d) for d in deps]
    order = [k for k, d in enumerate(indeg) if d == 0]
    for k in order:
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                order.append(u)
    if len(order) != len(comb):
        raise ValueError("combinational loop in the netlist")
    compiled = {}

    def evaluate():
        for k in order:
            _, ctype, pins = comb[k]
            lib = cells[ctype]
            env = {p: values.get(pins.get(p, "1'h0"), values["1'h0"]) for p in lib.inputs}
            for out, func in lib.outputs.items():
                if out not in pins:
                    continue
                f = compiled.get((ctype, out))
                if f is None:
                    f = compiled[(ctype, out)] = _compile(func, lib.inputs)
                values[pins[out]] = f(env, n)
        for lhs, rhs in netlist.aliases:
            values[lhs] = values.get(rhs, values["1'h0"])

    evaluate()
    missing_nets = {net for net, _ in missing}
    # Flip-flops missing from the VCD: Q(t + 1) = D(t) from zero state, repeated until nothing changes.
    for _ in range(n if missing else 0):
        changed = False
        for name, ctype, pins in flops:
            lib = cells[ctype]
            for out, func in lib.outputs.items():
                net = pins.get(out)
                if net not in missing_nets:
                    continue
                d = values[pins[lib.next_state]] if lib.next_state in pins else values["1'h0"]
                new = np.concatenate([[False], d[:-1]])
                if func.strip() in ("IQN", "!IQ"):
                    new = ~new
                if not np.array_equal(new, values[net]):
                    values[net] = new
                    changed = True
        if not changed:
            break
        evaluate()
    agree = total = 0
    for name, ctype, pins in flops:
        lib = cells[ctype]
        qpin = next((o for o, f in lib.outputs.items() if f.strip() == "IQ" and o in pins), None)
        if qpin is None or lib.next_state not in pins or pins[qpin] in missing_nets:
            continue
        d, q = values[pins[lib.next_state]], values[pins[qpin]]
        agree += int(np.sum(d[:-1] == q[1:]))
        total += n - 1
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, ctype, pins in flops:
        lib = cells[ctype]
        qpin = next((o for o in lib.outputs if o in pins), None)
        if qpin is not None:
            groups[re.sub(r"\[\d+\]$", "", pins[qpin])].append((name, pins[qpin]))
    registers = {}
    for reg, members in groups.items():
        change = np.zeros(n - 1, bool)
        for _, net in members:
            change |= values[net][1:] != values[net][:-1]
        registers[reg] = ([inst for inst, _ in members], float(np.mean(change)) if n > 1 else 0.0)
    rate = {}
    for net, v in values.items():
        if net.startswith("1'h") or net == clock:
            continue
        rate[net] = float(np.count_nonzero(v[1:] != v[:-1])) / (n - 1)
    return NetActivity(rate, n, len(flops), found_q, agree / total if total else 1.0, found_in,
                       len([p for p in netlist.inputs if p != clock]), registers)

"""Gate-level simulation of a synthesised netlist, cycle by cycle, from the RTL simulation's VCD.

Why the flow simulates gates itself: the Debian OpenSTA 2.0.17 cannot take per-net activity. It has no VCD/SAIF
reader, its ``set_power_activity -pins`` wrapper calls an undefined ``get_pins_error``, and activities set on
register outputs through ``sta::set_power_pin_activity`` are overwritten by its own propagation (checked:
annotating every ``Q`` pin with 0 or 0.2 gives the same power). So:

1. The RTL's VCD (Amaranth simulator, zero delay) is sampled once per clock cycle, just before each rising
   edge (essop.synth.gatesim.vcd.sample). This gives each primary input and each register output bit — Yosys
   keeps register names in the flattened netlist, ``\\cell_3_4.count[2]`` for the VCD's ``cell_3_4.count``
   bit 2 — cycle by cycle.
2. Every other net is computed from those, cycle by cycle, by evaluating the Liberty ``function`` of every
   combinational cell in topological order (NumPy, all cycles at once).
3. Self-check: a flip-flop's D input computed in cycle t must equal its Q output sampled in cycle t + 1. The
   fraction of flip-flop bits that pass is reported (``mapping_check``); a flip-flop whose Q was not found in
   the VCD is simulated from its D instead (iterated to a fixed point from zero state).

The toggle rate of a net is its number of changes between consecutive cycle samples / (cycles - 1): a
zero-delay, glitch-free rate, at most 1 per cycle.

Clock gating: an integrated clock-gating cell (Liberty ``clock_gating_integrated_cell``) passes the clock edge
at the end of cycle t when its enable (OR its test enable) is high in cycle t: its latch holds the enable
while the clock is high, so the sample just before the edge decides. A flip-flop clocked by its output
captures D only in those cycles and holds otherwise; the self-check and the simulation of flip-flops missing
from the VCD follow that rule, and ``clock_duty`` gives each gated flip-flop and each gating cell the
fraction of cycles in which the gated clock pulses (the power stage scales clock-driven power by it).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from essop.synth.gatesim.liberty import LibCell, compile_function
from essop.synth.gatesim.netlist import Netlist

__all__ = ["NetActivity", "net_activity"]


@dataclass
class NetActivity:
    rate: dict[str, float]
    """Net bit -> toggles per cycle."""
    cycles: int
    flops: int
    flops_from_vcd: int
    """Flip-flops whose state was found in the VCD (by the name of the net on their Q or QN)."""
    mapping_check: float
    """Fraction of (flip-flop, cycle) pairs where the computed D equals the next sampled Q."""
    inputs_from_vcd: int
    inputs: int
    registers: dict[str, tuple[list[str], float]] = field(default_factory=dict)
    """Register name (Q net without its bit index) -> (its flip-flop instances, fraction of cycles in which
    any of its bits changes: the duty of an ideal clock-gating enable)."""
    clock_duty: dict[str, float] = field(default_factory=dict)
    """Clock-gating cell, and each flip-flop on a gated clock -> fraction of cycles its clock pulses (the gating
    cell's enable duty); flip-flops on the ungated clock are not listed (duty 1)."""

    def mean(self) -> float:
        return float(np.mean(list(self.rate.values()))) if self.rate else 0.0


def net_activity(netlist: Netlist, cells: dict[str, LibCell], bits: dict[str, np.ndarray],
                 cycles: int, clock: str | None = "clk") -> NetActivity:
    if netlist.wide_assigns:
        raise ValueError(f"only single-bit assign statements are handled, not {netlist.wide_assigns[0]}")
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
    comb, flops, gates = [], [], []
    for inst in netlist.instances:
        lib = cells.get(inst[1])
        if lib is None:
            raise ValueError(f"cell type {inst[1]!r} of instance {inst[0]!r} is not in the Liberty files")
        if lib.clock_gating:
            gates.append(inst)
            continue
        if lib.latch:
            # The designs are synchronous; a latch would need level-sensitive simulation, which this is not.
            raise ValueError(f"instance {inst[0]!r} is a latch ({inst[1]}); the gate-level simulation handles "
                             f"flip-flops (Liberty ff group) and combinational cells only")
        (flops if lib.ff else comb).append(inst)
    found_q = 0
    missing = []
    for name, ctype, pins in flops:
        lib = cells[ctype]
        outs = [(pins[o], f.strip()) for o, f in lib.outputs.items() if pins.get(o) is not None]
        # The flip-flop's state, from whichever of its outputs the VCD names: a register bit Yosys kept the
        # name of. Its other output (QN beside Q, as NanGate 45 nm's DFF_X1 has) is then that state's
        # complement, not a flip-flop of its own to simulate from zero state.
        state = None
        for net, func in outs:
            if net in bits:
                state = ~bits[net] if func in ("IQN", "!IQ") else bits[net]
                break
        for net, func in outs:
            if state is None:
                missing.append((net, func))
                values[net] = np.zeros(n, bool)
            else:
                values[net] = ~state if func in ("IQN", "!IQ") else state
        found_q += state is not None
    # Gated clock net -> its gating cell; flip-flop -> the gating cell on its clock pin (gated ones only).
    gate_of_net = {}
    for name, ctype, pins in gates:
        lib = cells[ctype]
        if pins.get(lib.gated_clock_pin) != clock:
            raise ValueError(f"clock-gating cell {name!r} is not on the clock {clock!r}; only one level of clock "
                             f"gating is simulated")
        gate_of_net[pins.get(lib.gate_out_pin)] = name
    gate_of_flop = {}
    for name, ctype, pins in flops:
        clk_net = next((pins[c] for c in cells[ctype].clock_pins if c in pins), clock)
        if clk_net in gate_of_net:
            gate_of_flop[name] = gate_of_net[clk_net]
        elif clk_net != clock:
            raise ValueError(f"flip-flop {name!r} is clocked by {clk_net!r}, neither the clock nor a gated clock")
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
                    f = compiled[(ctype, out)] = compile_function(func, lib.inputs)
                values[pins[out]] = f(env, n)
        for lhs, rhs in netlist.aliases:
            values[lhs] = values.get(rhs, values["1'h0"])

    def enables() -> dict[str, np.ndarray]:
        """Each gating cell's enable per cycle: its clock passes the edge at the end of the cycles where true."""
        out = {}
        for name, ctype, pins in gates:
            lib = cells[ctype]
            en = values.get(pins.get(lib.gate_enable_pin, "1'h0"), values["1'h0"])
            if lib.gate_test_pin:
                en = en | values.get(pins.get(lib.gate_test_pin, "1'h0"), values["1'h0"])
            out[name] = en
        return out

    def captures(name: str, enable: dict[str, np.ndarray]) -> np.ndarray:
        """The cycles at whose end flip-flop ``name`` takes its D."""
        return enable[gate_of_flop[name]] if name in gate_of_flop else values["1'h1"]

    evaluate()
    enable = enables()
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
                # Q(t + 1) = D of the last cycle <= t that captured (zero before the first).
                last = np.maximum.accumulate(np.where(captures(name, enable), np.arange(n), -1))
                new = np.concatenate([[False], np.where(last >= 0, d[np.maximum(last, 0)], False)[:-1]])
                if func.strip() in ("IQN", "!IQ"):
                    new = ~new
                if not np.array_equal(new, values[net]):
                    values[net] = new
                    changed = True
        if not changed:
            break
        evaluate()
        enable = enables()
    agree = total = 0
    for name, ctype, pins in flops:
        lib = cells[ctype]
        qpin = next((o for o, f in lib.outputs.items() if f.strip() == "IQ" and o in pins), None)
        if qpin is None or lib.next_state not in pins or pins[qpin] in missing_nets:
            continue
        d, q = values[pins[lib.next_state]], values[pins[qpin]]
        # A gated flip-flop takes D only in its enabled cycles and holds Q in the others.
        expect = np.where(captures(name, enable)[:-1], d[:-1], q[:-1])
        agree += int(np.sum(expect == q[1:]))
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
    duty = {name: float(np.mean(en)) for name, en in enable.items()}
    duty |= {name: duty[gate] for name, gate in gate_of_flop.items()}
    return NetActivity(rate, n, len(flops), found_q, agree / total if total else 1.0, found_in,
                       len([p for p in netlist.inputs if p != clock]), registers, duty)

"""Power stage: every instance at its own nets' measured activity, from OpenSTA's per-instance reports.

OpenSTA 2.0.17 cannot take per-net activities (essop.synth.gatesim.simulate says why), but at a uniform
activity a the power of each instance is P0 + a * k: P0 (a = 0) is the clock-driven internal power of a
flip-flop (and 0 for a gate), k the activity-proportional part. OpenSTA reports every instance at a = 0 and
a = A_REF (essop.synth.sta); ``per_net_power`` gives each instance P0 + r * k with r the measured rate of its
output net(s) — for a gate, Liberty internal power is energy per output transition; for a flip-flop, the rate
of Q (Q toggles exactly when D did one cycle earlier).

Synthesised clock gating (EssopConfig.clock_gating): OpenSTA propagates the clock through a gating cell and
reports its flip-flops' clock-driven power (P0) as if the gated clock ran every cycle, so a gated flip-flop
gets P0 x its clock's duty (the fraction of cycles the gating cell passes the edge, measured in the gate-level
simulation) + r * k. The gating cell itself keeps its internal power at the full clock (its latch and clock
pin see every edge; an upper bound, since its output's share also follows the duty) and its output net's
switching power (the gated clock net) x the duty; its activity-proportional part follows its enable's rate.

``clock_gating_estimate`` is an estimate, not a synthesised design: every register of >= GATE_MIN_BITS
flip-flops gets one clock-gating cell whose enable is high exactly in the cycles where the register's value
changes (the ideal enable); its flip-flops' clock-driven power scales with that duty, the gating cell's own
clock power is added. Enable logic and the hold multiplexers it would make redundant are not counted.
"""
from __future__ import annotations

from essop.synth.gatesim.liberty import LibCell
from essop.synth.gatesim.netlist import Netlist
from essop.synth.gatesim.simulate import NetActivity
from essop.synth.sta import A_REF, instance_power
from essop.synth.yosys import GATE_MIN_BITS

__all__ = ["GATE_MIN_BITS", "per_net_power", "clock_gating_estimate"]


def per_net_power(text: str, netlist: Netlist, cells: dict[str, LibCell], act: NetActivity) -> dict[str, float]:
    """Internal, switching, leakage, dynamic and sequential (flip-flop) totals in watts with every instance at
    its output nets' rates; ``clock_floor``: the activity-independent part (P0 of every instance); and the
    clock-gating estimate's ``gating_saving`` (W) and ``gating_cells`` (see ``clock_gating_estimate``).
    ``text``: the OpenSTA output with the @@INST0/@@INST1 (and, for the estimate, @@ICG) reports."""
    p0, p1 = instance_power(text, "@@INST0"), instance_power(text, "@@INST1")
    tot = {"internal": 0.0, "switching": 0.0, "leakage": 0.0, "sequential": 0.0, "clock_floor": 0.0}
    for name, ctype, pins in netlist.instances:
        lib = cells[ctype]
        (i0, s0, leak), (i1, s1, _) = p0[name], p1[name]
        duty = act.clock_duty.get(name, 1.0)
        if lib.clock_gating:
            r = act.rate.get(pins.get(lib.gate_enable_pin), 0.0)
            internal = i0 + (i1 - i0) * r / A_REF
            switching = s0 * duty + (s1 - s0) * r / A_REF
            floor = i0 + s0 * duty
        else:
            rates = [act.rate.get(pins[o], 0.0) for o in lib.outputs if o in pins]
            r = sum(rates) / len(rates) if rates else 0.0
            internal = i0 * duty + (i1 - i0) * r / A_REF
            switching = s0 * duty + (s1 - s0) * r / A_REF
            floor = (i0 + s0) * duty
        tot["internal"] += internal
        tot["switching"] += switching
        tot["leakage"] += leak
        tot["clock_floor"] += floor
        if lib.ff:
            tot["sequential"] += internal + switching
    tot["dynamic"] = tot["internal"] + tot["switching"]
    tot["gating_saving"], tot["gating_cells"] = clock_gating_estimate(text, p0, act)
    return tot


def clock_gating_estimate(text: str, p0: dict[str, tuple[float, float, float]],
                          act: NetActivity) -> tuple[float, int]:
    """(Power saved in W, clock-gating cells used) by ideal-enable clock gating of every register where it
    pays: ``floor * (1 - duty) > icg`` with ``floor`` the register's flip-flops' clock-driven power at
    activity 0, ``duty`` the fraction of cycles in which the register changes, ``icg`` the clock-driven power
    of one gating cell (the @@ICG probe). No @@ICG report or no registers: (0, 0)."""
    saving, n_icg = 0.0, 0
    if "@@ICG" in text and act.registers:
        probe = instance_power(text, "@@ICG")
        if "essop_icg_probe" not in probe:
            raise RuntimeError("OpenSTA reported no power for the clock-gating probe (is the library's clock-gating "
                               "cell named right? see sta.log)")
        icg = sum(probe["essop_icg_probe"][:2])
        for insts, duty in act.registers.values():
            # Registers the netlist already gates (EssopConfig.clock_gating) are not counted twice.
            if len(insts) < GATE_MIN_BITS or any(i in act.clock_duty for i in insts):
                continue
            floor = sum(p0[i][0] + p0[i][1] for i in insts)
            if floor * (1 - duty) > icg:   # gate only where it pays
                saving += floor * (1 - duty) - icg
                n_icg += 1
    return saving, n_icg

"""Switching activity measured by simulating a design on the realistic workload (essop.golden.workload,
`operands`).

The Debian OpenSTA (2.0.17) has no VCD reader, and its own propagation of input activity through flip-flops
gave register outputs more than one toggle per cycle (transition densities add up through XOR trees and are
not capped at a register), so the flow does not use it. Instead the design's RTL is simulated with the Amaranth
simulator, a VCD of every signal is written, and the mean toggle rate over all signal bits (toggles per bit
per clock cycle; clock and reset excluded) is the design-wide rate kept for comparison (``toggle_rate``); the
power numbers use the VCD net by net (essop.synth.gatesim). It is a zero-delay, glitch-free, design-wide average: it ranks designs by how much
of their state actually moves (an ESSOP counter changes on at most one cycle in four; a multiplier's datapath
on most cycles), not net by net.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from essop.synth.gatesim.vcd import toggle_rate

__all__ = ["vcd_toggle_rate", "essop_activity", "fp16_mul_activity", "fp16_outer_activity"]

_CLOCK_PERIOD = 1e-8


def vcd_toggle_rate(path: Path, cycles: int, exclude=("clk", "rst")) -> float:
    """Mean toggles per bit per cycle over every signal of a VCD (signals named in ``exclude`` left out);
    read by essop.synth.gatesim.vcd."""
    return toggle_rate(path, cycles, exclude)


def _run(dut, bench, vcd: Path, clocked: bool = True) -> None:
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(_CLOCK_PERIOD)
    sim.add_testbench(bench)
    vcd.parent.mkdir(parents=True, exist_ok=True)
    with sim.write_vcd(vcd_file=str(vcd)):
        sim.run()


def essop_activity(array, xs: np.ndarray, ds: np.ndarray, vcd: Path) -> float:
    """Simulate ``array`` (an EssopArray) on the pairs (xs [P, n], ds [P, m] uint16), output always ready."""
    cfg = array.config
    cycles = 0
    if cfg.scaling == "block":
        # Block scaling: one exponent per layer, here the whole workload's (what software would supply).
        from essop.golden.fp16 import vector_exponent
        exp_x, exp_d = int(vector_exponent(xs.ravel())), int(vector_exponent(ds.ravel()))

    async def bench(ctx):
        nonlocal cycles
        ctx.set(array.o_ready, 1)
        if cfg.scaling == "block":
            ctx.set(array.i_exp_x, exp_x)
            ctx.set(array.i_exp_d, exp_d)
        for k, (x, d) in enumerate(zip(xs, ds)):
            ctx.set(array.i_x, int.from_bytes(x.astype("<u2").tobytes(), "little"))
            ctx.set(array.i_delta, int.from_bytes(d.astype("<u2").tobytes(), "little"))
            # Groups of acc_depth pairs (the last group may be shorter).
            ctx.set(array.i_last, int((k + 1) % cfg.acc_depth == 0 or k + 1 == len(xs)))
            ctx.set(array.i_valid, 1)
            while True:
                ready = ctx.get(array.i_ready)
                await ctx.tick()
                cycles += 1
                if ready:
                    break
        ctx.set(array.i_valid, 0)
        for _ in range(cfg.bl * cfg.acc_depth + cfg.rows + 4):
            await ctx.tick()
            cycles += 1

    _run(array, bench, vcd)
    return vcd_toggle_rate(vcd, cycles)


def fp16_mul_activity(mul, a: np.ndarray, b: np.ndarray, vcd: Path) -> float:
    """Simulate an Fp16Multiplier taking one operand pair per cycle (a combinational one: per time step)."""
    return _pair_per_cycle_activity(mul, mul.i_a, mul.i_b, [(int(x), int(y)) for x, y in zip(a, b)], vcd)


def fp16_outer_activity(outer, xs: np.ndarray, ds: np.ndarray, vcd: Path) -> float:
    """Simulate an Fp16Outer taking one vector pair per cycle."""
    def word(v: np.ndarray) -> int:
        return int.from_bytes(v.astype("<u2").tobytes(), "little")
    return _pair_per_cycle_activity(outer, outer.i_x, outer.i_delta, [(word(x), word(d)) for x, d in zip(xs, ds)],
                                    vcd)


def _pair_per_cycle_activity(dut, port_a, port_b, pairs: list[tuple[int, int]], vcd: Path) -> float:
    """Toggle rate of a baseline design (``i_valid`` high throughout) fed one (port_a, port_b) pair per clock
    cycle, or per clock period where it is combinational (latency 0)."""
    cycles = 0
    clocked = dut.latency > 0

    async def bench(ctx):
        nonlocal cycles
        ctx.set(dut.i_valid, 1)
        for a, b in pairs:
            ctx.set(port_a, a)
            ctx.set(port_b, b)
            if clocked:
                await ctx.tick()
            else:
                await ctx.delay(_CLOCK_PERIOD)
            cycles += 1

    _run(dut, bench, vcd, clocked)
    return vcd_toggle_rate(vcd, cycles)

"""cocotb testbench of the fault model (docs/reliability.md): the generated EssopArray suffers the faults of a
plan (essop.golden.faults.FaultPlan) injected into its signals, and every output row must equal the golden
fault model's for the same plan — the same faults give the same counts.

Injection, at the falling edge in the middle of a cycle, so that the next rising edge sees it:
- counters and LFSR states are registers: their value is overwritten (deposit) with the bit flipped at the
  start of the bitstream cycle the fault names; they then go on from there;
- comparator outputs are wires: forced to the flipped value for that one cycle (Force), then released;
- an input fault flips the bit in the load buffer's register of FP16 patterns the cycle after the pair's
  transfer, after the per_pair exponent was taken from the clean patterns.
Bitstream cycles are counted from the bitstream generators' `o_en`. It runs on Icarus, where VPI reaches
every inner signal; the project's Verilator builds do not make inner signals public (no --public-flat-rw),
so `run_fault_injection` does not offer Verilator.

Inputs from the environment: ESSOP_CONFIG (configuration JSON), ESSOP_FAULT_CASE (an .npz holding the
stream and the plan, `essop.sim.tb_faults.write_case`), ESSOP_SUMMARY (JSON written at the end).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from essop.config import EssopConfig
from essop.fp16_format import WIDTH as FP16_WIDTH
from essop.golden.faults import SITES, FaultPlan
from essop.sim.stimulus import Stream

__all__ = ["write_case", "read_case", "s1_register_names"]


def write_case(path: Path, stream: Stream, plan: FaultPlan, reference_plan: FaultPlan | None = None) -> None:
    """The stream, the faults to inject and the faults the reference assumes (the same unless a test shows
    that a difference is seen)."""
    reference_plan = plan if reference_plan is None else reference_plan
    np.savez(path, xs=stream.xs, ds=stream.ds, exp_x=stream.exp_x, exp_d=stream.exp_d, last=stream.last,
             **{f"plan_{s}": getattr(plan, s) for s in SITES},
             **{f"reference_{s}": getattr(reference_plan, s) for s in SITES})


def read_case(path: Path) -> tuple[Stream, FaultPlan, FaultPlan]:
    z = np.load(path)
    stream = Stream(z["xs"], z["ds"], z["exp_x"], z["exp_d"], z["last"], ["faults"] * len(z["last"]))
    return (stream, FaultPlan(**{s: z[f"plan_{s}"] for s in SITES}),
            FaultPlan(**{s: z[f"reference_{s}"] for s in SITES}))


def s1_register_names(verilog: str) -> dict[str, str]:
    """The registers of the input stage's s1_bits_x / s1_bits_d: the register itself where Yosys kept its
    name, else the register it made an alias of (`assign s1_bits_x = \\i_bits$8 ;`, named after a port it
    drives)."""
    found = {}
    for side in ("x", "d"):
        if re.search(rf"\breg \[\d+:0\] s1_bits_{side}\b", verilog):
            found[side] = f"s1_bits_{side}"
            continue
        match = re.search(rf"assign s1_bits_{side} = \\?(\S+) ;", verilog)
        if match is None:
            raise ValueError(f"no register drives s1_bits_{side} in the generated Verilog")
        found[side] = match.group(1)
    return found


try:    # loaded inside the simulator; the helpers above are plain Python for the launcher
    import cocotb
    from cocotb.handle import Force, Release
    from cocotb.triggers import Timer
except ImportError:     # pragma: no cover - cocotb is a pinned dependency
    cocotb = None


from essop.sim.tb_essop import _get, _get_signed, start_and_reset   # noqa: E402 - the array testbench's helpers


if cocotb is not None:
    @cocotb.test()
    async def essop_faults(dut):
        """The plan's faults injected into the RTL give the golden fault model's rows, bit for bit."""
        from essop.sim.reference import describe_mismatch, expected_rows

        cfg = EssopConfig.from_json(Path(os.environ["ESSOP_CONFIG"]).read_text())
        stream, plan, reference_plan = read_case(Path(os.environ["ESSOP_FAULT_CASE"]))
        expected = expected_rows(cfg, stream, reference_plan)
        names = s1_register_names(Path(os.environ["ESSOP_VERILOG"]).read_text())
        log = dut._log
        log.info("faults: %s on %s, %d pairs", plan.counts(), cfg.name, len(stream))

        stage = dut._id("input", extended=False)
        s1 = {0: stage._id(names["x"], extended=False), 1: stage._id(names["d"], extended=False)}
        gen = dut.bitstreams
        lfsr = {0: [gen._id(f"lfsr_x_{k}", extended=False).state for k in range(len(cfg.lfsr_seeds_x))],
                1: [gen._id(f"lfsr_d_{k}", extended=False).state for k in range(len(cfg.lfsr_seeds_d))]}
        cmp = {0: [gen._id(f"cmp_x_{k}", extended=False).o_bit for k in range(cfg.cols)],
               1: [gen._id(f"cmp_d_{k}", extended=False).o_bit for k in range(cfg.rows)]}
        cells = dut.cell_grid
        by_cycle: dict[str, dict[int, list]] = {s: {} for s in ("lfsr", "comparators", "counters")}
        for site in by_cycle:
            for row in getattr(plan, site):
                by_cycle[site].setdefault(int(row[0]), []).append(tuple(int(v) for v in row[1:]))
        by_pair: dict[int, list] = {}
        for p, side, k, bit in plan.inputs:
            by_pair.setdefault(int(p), []).append((int(side), int(k), int(bit)))

        falling, read_only = await start_and_reset(dut)

        sent = compared = mismatches = cycle = 0
        accepted_now = None       # pair index transferred at the coming rising edge
        forced: list = []
        reported: list[str] = []
        limit = 50 * len(stream) * (cfg.bl + cfg.rows + 8) + 1000
        for _ in range(limit):
            await falling
            for handle in forced:
                handle.value = Release()
            forced = []
            # Several faults may hit one register in one cycle: their masks are gathered, then written once.
            flips: dict = {}
            if accepted_now is not None:          # the pair is in the load buffer now
                for side, k, bit in by_pair.get(accepted_now, ()):
                    flips[s1[side]] = flips.get(s1[side], 0) ^ (1 << (FP16_WIDTH * k + bit))
                accepted_now = None
            bitstream_cycle = bool(_get(gen.o_en))    # this cycle is bitstream cycle `cycle`
            if bitstream_cycle:
                for side, g, bit in by_cycle["lfsr"].get(cycle, ()):
                    flips[lfsr[side][g]] = flips.get(lfsr[side][g], 0) ^ (1 << bit)
                for i, j, bit in by_cycle["counters"].get(cycle, ()):
                    cell = cells._id(f"cell_{i}_{j}", extended=False).count
                    flips[cell] = flips.get(cell, 0) ^ (1 << bit)
            for handle, mask in flips.items():
                handle.value = _get(handle) ^ mask
            if bitstream_cycle:
                if cycle in by_cycle["comparators"]:
                    await Timer(1, unit="ns")     # the comparators have settled on the (flipped) states
                    for side, k in by_cycle["comparators"][cycle]:
                        handle = cmp[side][k]
                        handle.value = Force(1 - _get(handle))
                        forced.append(handle)
                cycle += 1
            if sent < len(stream):
                dut.i_x.value = sum(int(v) << (FP16_WIDTH * j) for j, v in enumerate(stream.xs[sent]))
                dut.i_delta.value = sum(int(v) << (FP16_WIDTH * i) for i, v in enumerate(stream.ds[sent]))
                dut.i_exp_x.value = int(stream.exp_x[sent]) & ((1 << len(dut.i_exp_x)) - 1)
                dut.i_exp_d.value = int(stream.exp_d[sent]) & ((1 << len(dut.i_exp_d)) - 1)
                dut.i_last.value = int(stream.last[sent])
            dut.i_valid.value = int(sent < len(stream))
            dut.o_ready.value = 1
            await read_only
            if sent < len(stream) and _get(dut.i_ready):
                accepted_now = sent
                sent += 1
            if _get(dut.o_valid):
                got = {"o_row": _get(dut.o_row), "o_data": _get(dut.o_data), "o_exp": _get_signed(dut.o_exp),
                       "o_last": _get(dut.o_last), "o_nonfinite": _get(dut.o_nonfinite),
                       "o_saturated": _get(dut.o_saturated)}
                want = expected[compared]
                if got != want.fields():
                    mismatches += 1
                    reported.append(describe_mismatch(cfg, want, got))
                compared += 1
                if compared == len(expected):
                    break
        summary = {"config": cfg.name, "faults": plan.counts(), "rows_expected": len(expected),
                   "rows_compared": compared, "mismatches": mismatches, "bitstream_cycles": cycle,
                   "errors": reported[:10]}
        if "ESSOP_SUMMARY" in os.environ:
            Path(os.environ["ESSOP_SUMMARY"]).write_text(json.dumps(summary, indent=2))
        for line in reported[:10]:
            log.error("MISMATCH %s", line)
        assert compared == len(expected) > 0, f"received {compared} of {len(expected)} rows"
        assert mismatches == 0, f"{mismatches} mismatching rows; first: {reported[:1]}"

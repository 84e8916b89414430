"""cocotb testbench of the generated EssopArray: drive, monitor, score every output row bit for bit.

Launched by essop.sim.runner (pytest or `essop verify`); loaded inside the simulator. Inputs from the
environment:
  ESSOP_CONFIG   path of the configuration JSON written beside the Verilog (`essop generate`)
  ESSOP_PAIRS    number of realistic pairs after the directed edge cases (default 24)
  ESSOP_SUMMARY  path where the scoreboard writes its summary JSON (pairs, rows compared, mismatches...)
  ESSOP_TB_CORRUPT  "1" flips one bit of the first expected row: a self-check that the scoreboard can fail

Every random choice (stimulus, idle cycles, back-pressure) derives from cocotb.RANDOM_SEED, which is logged;
COCOTB_RANDOM_SEED=<seed> replays a run exactly.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

from essop.config import EssopConfig
from essop.fp16_format import WIDTH as FP16_WIDTH
from essop.hdl.array import EssopArray
from essop.sim.reference import describe_mismatch, expected_rows
from essop.sim.stimulus import build_stream

# (probability that the source idles on a cycle, probability that the sink refuses a row on a cycle);
# the testbench switches between these profiles at random so every stream sees every combination.
STALL_PROFILES = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.7), (0.3, 0.5), (0.8, 0.9))
PROFILE_CYCLES = 48
MAX_REPORTED_MISMATCHES = 10


def _get(handle) -> int:
    v = handle.value
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


def _get_signed(handle) -> int:
    v = handle.value
    return v.to_signed() if hasattr(v, "to_signed") else int(v)


def _set(handle, value: int) -> None:
    # Masked to the port width: signed ports (i_exp_*) take two's complement.
    handle.value = int(value) & ((1 << len(handle)) - 1)


async def start_and_reset(dut):
    """Start the array's 100 MHz clock and hold reset, with the input and output idle, for three cycles; return
    the falling-edge and read-only triggers the testbenches step with (inputs change on falling edges)."""
    Clock(dut.clk, 10, unit="ns").start()
    falling, read_only = FallingEdge(dut.clk), ReadOnly()
    dut.rst.value = 1
    dut.i_valid.value = 0
    dut.o_ready.value = 0
    for _ in range(3):
        await falling
    dut.rst.value = 0
    return falling, read_only


@cocotb.test()
async def essop_stream_regression(dut):
    """Directed and realistic pairs under random idle cycles and back-pressure; every row equals the golden
    model's, and no row is missing or extra."""
    cfg = EssopConfig.from_json(Path(os.environ["ESSOP_CONFIG"]).read_text())
    n_pairs = int(os.environ.get("ESSOP_PAIRS", "24"))
    corrupt = os.environ.get("ESSOP_TB_CORRUPT") == "1"
    # cocotb derives this test's seed from the regression seed and the test's name; replaying needs the
    # regression seed.
    seed = cocotb.RANDOM_SEED
    regression_seed = os.environ.get("COCOTB_RANDOM_SEED", "(unset)")
    log = dut._log
    log.info("ESSOP regression: config %s, regression seed %s (replay with COCOTB_RANDOM_SEED=%s), test seed %d",
             cfg.name, regression_seed, regression_seed, seed)

    # Widths come from the DUT; they must agree with the configuration the reference uses.
    n = len(dut.i_x) // FP16_WIDTH
    m = len(dut.i_delta) // FP16_WIDTH
    width = len(dut.o_data) // n
    if (m, n, width) != (cfg.rows, cfg.cols, cfg.data_element_width):
        raise AssertionError(f"DUT ports give rows={m}, cols={n}, element width {width}; the configuration "
                             f"says rows={cfg.rows}, cols={cfg.cols}, element width {cfg.data_element_width}")

    rng = np.random.default_rng(seed)
    stall_rng = random.Random(seed ^ 0x5EED)
    stream = build_stream(cfg, rng, n_pairs)
    expected = expected_rows(cfg, stream)
    if corrupt:
        first = expected[0]
        expected[0] = type(first)(**{**first.__dict__, "data": first.data ^ 1})
    log.info("%d pairs (%d directed), %d groups, %d rows expected", len(stream),
             sum(lab != "realistic" for lab in stream.labels), len({r.group for r in expected}), len(expected))

    falling, read_only = await start_and_reset(dut)

    # The array's own timing properties (the DUT is its generated Verilog). With a willing source and sink no
    # stretch without a transfer outlasts a group period; random idle cycles and back-pressure stretch it,
    # hence the margin.
    timing = EssopArray(cfg)
    watchdog = 40 * timing.steady_state_cycles_per_group(cfg.acc_depth) + 2000
    sent = compared = mismatches = cycles = idle = 0
    accepted_at: list[tuple[int, float]] = []   # (cycle, ns) each pair was taken: a mismatch's window starts there
    valid_held = False
    p_idle = p_bp = 0.0
    reported: list[str] = []
    # After the last row, check that nothing more comes out: for twice the time from a pair's transfer to its
    # first row, and a read-out, so that even a pair the array took wrongly would show up.
    drain_left = 2 * timing.input_to_first_output_latency + timing.cycles_per_group_output

    while True:
        await falling
        cycles += 1
        if cycles % PROFILE_CYCLES == 1:
            p_idle, p_bp = STALL_PROFILES[stall_rng.randrange(len(STALL_PROFILES))]
        # Source: once valid is raised it stays up with the same data until the array takes it.
        if sent < len(stream) and not valid_held and stall_rng.random() >= p_idle:
            _set(dut.i_x, sum(int(v) << (FP16_WIDTH * j) for j, v in enumerate(stream.xs[sent])))
            _set(dut.i_delta, sum(int(v) << (FP16_WIDTH * i) for i, v in enumerate(stream.ds[sent])))
            _set(dut.i_exp_x, stream.exp_x[sent])
            _set(dut.i_exp_d, stream.exp_d[sent])
            dut.i_last.value = int(stream.last[sent])
            valid_held = True
        dut.i_valid.value = int(valid_held)
        draining = compared >= len(expected)
        dut.o_ready.value = int(draining or stall_rng.random() >= p_bp)

        await read_only
        progress = False
        if valid_held and _get(dut.i_ready):
            accepted_at.append((cycles, get_sim_time("ns")))
            sent += 1
            valid_held = False
            progress = True
        if _get(dut.o_valid) and _get(dut.o_ready):
            got = {"o_row": _get(dut.o_row), "o_data": _get(dut.o_data), "o_exp": _get_signed(dut.o_exp),
                   "o_last": _get(dut.o_last), "o_nonfinite": _get(dut.o_nonfinite),
                   "o_saturated": _get(dut.o_saturated)}
            if compared >= len(expected):
                mismatches += 1
                reported.append(f"unexpected extra row after the last expected one: {got}")
            else:
                want = expected[compared]
                if got != want.fields():
                    mismatches += 1
                    if len(reported) < MAX_REPORTED_MISMATCHES:
                        c0, t0 = accepted_at[want.first_pair] if want.first_pair < len(accepted_at) else (0, 0.0)
                        reported.append(f"{describe_mismatch(cfg, want, got)} [cycles {c0}..{cycles}, "
                                        f"{t0:.0f}..{get_sim_time('ns'):.0f} ns]")
                compared += 1
            progress = True
        idle = 0 if progress else idle + 1
        if compared >= len(expected):
            drain_left -= 1
            if drain_left <= 0:
                break
        elif idle > watchdog:
            reported.append(f"no transfer for {idle} cycles: sent {sent}/{len(stream)} pairs, "
                            f"received {compared}/{len(expected)} rows")
            break

    for line in reported:
        log.error("MISMATCH %s", line)
    summary = {"config": cfg.name, "simulator": cocotb.SIM_NAME, "seed": regression_seed,
               "test_seed": seed, "pairs": len(stream),
               "pairs_sent": sent, "groups": len({r.group for r in expected}), "rows_expected": len(expected),
               "rows_compared": compared, "mismatches": mismatches + int(compared < len(expected)),
               "cycles": cycles, "corrupted_reference": corrupt, "errors": reported}
    if "ESSOP_SUMMARY" in os.environ:
        Path(os.environ["ESSOP_SUMMARY"]).write_text(json.dumps(summary, indent=2))
    log.info("compared %d/%d rows, %d mismatches, %d cycles", compared, len(expected),
             summary["mismatches"], cycles)
    assert compared == len(expected) > 0, f"received {compared} of {len(expected)} rows"
    assert summary["mismatches"] == 0, f"{summary['mismatches']} mismatching rows; first: {reported[:1]}"

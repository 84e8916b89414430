"""RTL == golden model, bit for bit: the cocotb testbench (essop.sim.tb_essop) on Icarus and Verilator over a
matrix of configurations, each built in its own directory. Replay a run with COCOTB_RANDOM_SEED=<seed>."""
from __future__ import annotations

from pathlib import Path

import pytest

from essop.config import EssopConfig
from essop.sim.runner import SIMULATORS, run_cocotb

BUILD_ROOT = Path(__file__).resolve().parents[2] / "sim_build" / "regression"

# Small arrays keep the whole matrix (both simulators) within minutes on two cores; every pair streams BL
# cycles, so the number of realistic pairs after the 13 directed ones shrinks as BL grows.
CONFIGS = [
    EssopConfig(rows=1, cols=1, bl=2, q=4),
    EssopConfig(rows=2, cols=3, bl=4, q=8),
    EssopConfig(rows=3, cols=2, bl=8, q=6, sharing="per_element"),
    EssopConfig(rows=4, cols=4, bl=16, q=8, sharing="per_element", output_format="count"),
    EssopConfig(rows=2, cols=2, bl=256, q=10, lfsr_width=20),
    EssopConfig(rows=3, cols=2, bl=8, q=8, acc_depth=4, scaling="block"),
    EssopConfig(rows=2, cols=3, bl=4, q=5, sharing="per_element", acc_depth=3, scaling="block",
                output_format="count", lfsr_restart=True),
    EssopConfig(rows=2, cols=2, bl=32, q=8, lfsr_restart=True, lfsr_steps=1, lr_shift=3, lfsr_width=12,
                lfsr_seed_x=0x5A5, lfsr_seed_d=0x3C3),
    EssopConfig(rows=2, cols=4, bl=64, q=12, sharing="per_element", acc_depth=2, scaling="block", lr_shift=-2),
    # Up-counting cells with the sign applied at read-out (EssopConfig.cell): the same rows as the golden model's.
    EssopConfig(rows=3, cols=4, bl=16, q=8, cell="upcount"),
    EssopConfig(rows=2, cols=3, bl=8, q=6, sharing="per_element", scaling="block", output_format="count",
                lfsr_restart=True, cell="upcount"),
    # Random-number sources (spec section 4): Sobol shared; Sobol per element with the per-pair shift; Sobol
    # with BL > 2**q, restart and block groups; the LFSR source with the per-pair shift.
    EssopConfig(rows=2, cols=3, bl=8, q=8, rng="sobol"),
    EssopConfig(rows=3, cols=4, bl=16, q=6, rng="sobol", sharing="per_element", rng_shift=True,
                output_format="count"),
    EssopConfig(rows=2, cols=2, bl=64, q=5, rng="sobol", rng_shift=True, lfsr_restart=True, acc_depth=3,
                scaling="block"),
    EssopConfig(rows=3, cols=2, bl=4, q=7, sharing="per_element", rng_shift=True, rng_shift_seed=0x2D1),
    # LFSR element words: one register per side and a constant XOR word per element.
    EssopConfig(rows=3, cols=4, bl=16, q=8, sharing="per_element", element_words=True),
    # The shadow bank (EssopConfig.readout): the read-out overlapping the next group's bitstreams; rows > BL
    # (the bank's interval sets the period), block groups, up-counting cells.
    EssopConfig(rows=5, cols=3, bl=4, q=8, readout="shadow"),
    EssopConfig(rows=3, cols=2, bl=8, q=6, acc_depth=3, scaling="block", output_format="count", readout="shadow"),
    EssopConfig(rows=3, cols=4, bl=16, q=8, sharing="per_element", cell="upcount", readout="shadow"),
    # Clock gating (EssopConfig.clock_gating): the row-enable counters, up/down with block groups and
    # up-counting per pair; the generated Verilog has plain enables, so both simulators run it as any other.
    EssopConfig(rows=3, cols=4, bl=8, q=6, acc_depth=3, scaling="block", output_format="count",
                clock_gating=True),
    EssopConfig(rows=4, cols=3, bl=16, q=8, cell="upcount", clock_gating=True),
    # Both: the shadow bank's capture clears gated counter rows.
    EssopConfig(rows=5, cols=3, bl=4, q=8, cell="upcount", readout="shadow", clock_gating=True),
]


def pairs_for(cfg: EssopConfig) -> int:
    return max(4, 768 // cfg.bl)


@pytest.mark.cocotb
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_rtl_equals_golden(simulator, cfg):
    """Every output row of the generated array equals the golden model's, under idle and back-pressure."""
    r = run_cocotb(cfg, simulator, BUILD_ROOT, pairs=pairs_for(cfg))
    replay = f"replay with COCOTB_RANDOM_SEED={r.seed}; logs in {r.build_dir}"
    assert r.rows_compared == r.rows_expected > 0, (replay, r.errors)
    assert r.mismatches == 0, (replay, r.errors)
    assert r.passed, replay


@pytest.mark.cocotb
def test_scoreboard_detects_a_corrupted_row():
    """The same scoreboard fails, naming the row and element, when one expected bit is flipped."""
    cfg = CONFIGS[1]
    r = run_cocotb(cfg, "icarus", BUILD_ROOT / "corrupt", pairs=4, corrupt=True)
    assert not r.passed
    assert r.mismatches == 1
    assert r.rows_compared == r.rows_expected > 0
    assert r.errors[0].startswith("group 0 (pair 0) row 0: o_data elements [0] expected "), r.errors[0]


@pytest.mark.cocotb
def test_scoreboard_detects_rtl_that_differs_from_the_reference():
    """RTL generated with one delta-LFSR seed, scored against the golden model with another: rows differ."""
    cfg = CONFIGS[1]
    other = cfg.replace(lfsr_seed_d=cfg.lfsr_seed_d ^ 1)
    r = run_cocotb(cfg, "icarus", BUILD_ROOT / "wrong_reference", pairs=4, reference_cfg=other)
    assert not r.passed
    assert r.rows_compared == r.rows_expected > 0
    assert r.mismatches > 0


@pytest.mark.cocotb
def test_scoreboard_detects_a_sobol_array_scored_with_another_shift():
    """A Sobol array with the per-pair shift, scored against the golden model with another shift seed: from the
    second pair on the shift words differ, and so do rows."""
    cfg = EssopConfig(rows=2, cols=3, bl=8, q=8, rng="sobol", rng_shift=True)
    other = cfg.replace(rng_shift_seed=cfg.rng_shift_seed + 1)
    r = run_cocotb(cfg, "icarus", BUILD_ROOT / "wrong_shift", pairs=8, reference_cfg=other)
    assert not r.passed
    assert r.rows_compared == r.rows_expected > 0
    assert r.mismatches > 0

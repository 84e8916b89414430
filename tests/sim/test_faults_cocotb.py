"""The fault model in the RTL: a plan's faults forced and deposited into the generated array's signals under
cocotb (Icarus) give the golden fault model's output rows, bit for bit — the same faults give the same
counts, flags and NaNs. A plan whose faults the golden model does not know fails (the check can fail)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden.faults import SITES, FaultPlan, sample_plan
from essop.sim.runner import run_fault_injection
from essop.sim.stimulus import build_stream

BUILD_ROOT = Path(__file__).resolve().parents[2] / "sim_build" / "faults"
SEED = 20260202

CONFIGS = {
    "shared-per_pair-count": EssopConfig(rows=3, cols=4, bl=8, q=4, lfsr_width=8, lfsr_seed_x=0x5A,
                                         lfsr_seed_d=0x3C, output_format="count"),
    "per_element-block-fp16": EssopConfig(rows=2, cols=3, bl=4, q=5, lfsr_width=7, lfsr_seed_x=0x2B,
                                          lfsr_seed_d=0x11, sharing="per_element", scaling="block",
                                          acc_depth=2, lfsr_restart=True),
}


def _case(cfg, rate, seed):
    rng = np.random.default_rng(seed)
    stream = build_stream(cfg, rng, 6, directed=False)
    plan = sample_plan(cfg, len(stream), rate, SITES, rng)
    return stream, plan


@pytest.mark.cocotb
@pytest.mark.parametrize("name", list(CONFIGS))
def test_rtl_under_faults_equals_golden_fault_model(name):
    cfg = CONFIGS[name]
    stream, plan = _case(cfg, 0.02, SEED)
    assert all(v > 0 for v in plan.counts().values()), plan.counts()
    r = run_fault_injection(cfg, stream, plan, BUILD_ROOT / name)
    assert r["rows_compared"] == r["rows_expected"] > 0, r["errors"]
    assert r["mismatches"] == 0, r["errors"]
    assert r["passed"]


@pytest.mark.cocotb
def test_an_unmodelled_fault_is_seen():
    """The RTL suffers a counter flip that the reference's plan leaves out: the rows differ."""
    cfg = CONFIGS["shared-per_pair-count"]
    stream, _ = _case(cfg, 0.0, SEED)
    plan = FaultPlan(counters=[[3, 1, 2, cfg.count_width - 2]])
    r = run_fault_injection(cfg, stream, plan, BUILD_ROOT / "unmodelled", reference_plan=FaultPlan())
    assert not r["passed"]
    assert r["mismatches"] == 1, r
    assert "row 1" in r["errors"][0]

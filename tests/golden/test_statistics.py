"""Statistical claims about the golden model's estimator (spec §5, docs/statistics.md), with fixed seeds and
enough draws that a correct model passes with overwhelming probability and a broken one fails:
- unbiased: the mean signed error against E[C] (q-bit magnitudes) is within BIAS_BOUND_SE standard errors
  of zero, in both sharing modes;
- the RMSE falls like 1/sqrt(BL): the log-log slope over BL = 4..64 is -0.5 within 0.08;
- run-on generators average errors over an accumulation group, restarting ones do not (repeated input)."""
from __future__ import annotations

import numpy as np
import pytest

from essop import lfsr_params
from essop.config import EssopConfig
from essop.golden.array import counts_reference
from essop.golden import statistics as stats
from essop.golden.workload import gaussian_errors, relu_activations
from essop.golden import fp16

BASE = EssopConfig(rows=8, cols=8, q=8)


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_estimator_is_unbiased(sharing):
    err = stats.draw_errors(BASE.replace(bl=16, sharing=sharing), 1200, seed=11)
    s = stats.summarize(err)
    assert abs(s["bias (SC)"]) < stats.BIAS_BOUND_SE * s["SE (SC)"], s
    # The bound is tight enough to matter: 5 % of the spread of a single product.
    assert stats.BIAS_BOUND_SE * s["SE (SC)"] < 0.05 * s["RMSE (SC)"]


def test_rmse_falls_like_one_over_sqrt_bl():
    bls = (4, 16, 64)
    rmse = [stats.summarize(stats.draw_errors(BASE.replace(bl=bl), 300, seed=12))["RMSE (SC)"] for bl in bls]
    assert stats.loglog_slope(bls, rmse) == pytest.approx(-0.5, abs=0.08)


def test_run_on_averages_over_a_group_and_restart_with_repeated_input_does_not():
    cfg = BASE.replace(bl=16, acc_depth=4, scaling="block")
    one = stats.summarize(stats.draw_errors(cfg, 300, seed=13, pairs=1, same_vector=True))["RMSE (SC)"]
    run_on = stats.summarize(stats.draw_errors(cfg, 300, seed=13, pairs=4, same_vector=True))["RMSE (SC)"]
    restart = stats.summarize(stats.draw_errors(cfg.replace(lfsr_restart=True), 300, seed=13, pairs=4,
                                                same_vector=True))["RMSE (SC)"]
    assert run_on < 0.7 * one           # 1/sqrt(4) = 0.5 expected
    assert restart > 0.85 * one         # the same BL random numbers four times: no averaging


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_restart_counts_equal_the_golden_model_with_those_seeds(sharing):
    """stats.restart_counts (run-on model at one position, per pair) is the restart model seeded there."""
    cfg = EssopConfig(rows=3, cols=2, bl=8, q=6, acc_depth=3, scaling="block", sharing=sharing)
    rng = np.random.default_rng(5)
    xs = np.stack([relu_activations(rng, cfg.cols) for _ in range(3)])
    ds = np.stack([gaussian_errors(rng, cfg.rows) for _ in range(3)])
    ex = max(fp16.vector_exponent(v) for v in xs)
    ed = max(fp16.vector_exponent(v) for v in ds)
    start = 12345
    shifts = start * cfg.bl * cfg.steps_per_cycle
    seeded = cfg.replace(lfsr_restart=True,
                         lfsr_seed_x=lfsr_params.jump(cfg.lfsr_taps_x, cfg.lfsr_width, cfg.lfsr_seed_x, shifts),
                         lfsr_seed_d=lfsr_params.jump(cfg.lfsr_taps_d, cfg.lfsr_width, cfg.lfsr_seed_d, shifts))
    want, _ = counts_reference(seeded, xs, ds, ex, ed, start_pair=0)
    assert np.array_equal(stats.restart_counts(cfg, xs, ds, ex, ed, start), want)


def test_loglog_slope_of_exact_power_law():
    assert stats.loglog_slope([4, 16, 64], [1 / 2, 1 / 4, 1 / 8]) == pytest.approx(-0.5)

"""Statistical claims about the golden model's estimator (spec §5, docs/statistics.md), with fixed seeds and
enough draws that a correct model passes with overwhelming probability and a broken one fails:
- unbiased: the mean signed error against E[C] (q-bit magnitudes) is within BIAS_BOUND_SE standard errors
  of zero, in both sharing modes;
- the RMSE falls like 1/sqrt(BL): the log-log slope over BL = 4..64 is -0.5 within 0.08;
- run-on generators average errors over an accumulation group, restarting ones do not (repeated input);
- Sobol bitstreams: the RMSE falls like 1/BL (slope <= -0.8 over BL = 4..256), with the per-pair shift the
  estimator stays unbiased;
- the exact fixed-input bias over a joint period: the documented bounds per source (docs/statistics.md), and
  the shortcut (XOR convolution) that computes it with the per-pair shift equals counting every cycle."""
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


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_sobol_rmse_falls_like_one_over_bl(sharing):
    bls = (4, 8, 16, 32, 64, 128, 256)
    cfg = BASE.replace(rng="sobol", sharing=sharing)
    rmse = [stats.summarize(stats.draw_errors(cfg.replace(bl=bl), 300, seed=14))["RMSE (SC)"] for bl in bls]
    assert -1.05 < stats.loglog_slope(bls, rmse) <= -0.8
    lfsr = stats.summarize(stats.draw_errors(BASE.replace(bl=64, sharing=sharing), 300, seed=14))["RMSE (SC)"]
    assert rmse[4] < 0.4 * lfsr          # at BL 64 already well below the LFSR's 1/sqrt(BL)


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_sobol_with_per_pair_shift_is_unbiased(sharing):
    err = stats.draw_errors(BASE.replace(bl=16, sharing=sharing, rng="sobol", rng_shift=True), 1200, seed=15)
    s = stats.summarize(err)
    assert abs(s["bias (SC)"]) < stats.BIAS_BOUND_SE * s["SE (SC)"], s
    assert stats.BIAS_BOUND_SE * s["SE (SC)"] < 0.05 * s["RMSE (SC)"]


def test_fixed_input_bias_bounds_per_source():
    """The exact long-run bias of fixed (a, b), q = 8, w = 16 (docs/statistics.md, docs/spec.md section 5): the
    default LFSR pair up to 2.7e-3 of full scale (the pairing of two m-sequences, not their 2**-16
    non-uniformity), unshifted Sobol up to 1.1e-2 (a (0, 8, 2)-net of 256 points), either source with the
    per-pair shift below 1e-7; one register split between the sides is exact to 2**-16."""
    cfg = EssopConfig()
    lfsr = stats.fixed_input_bias(cfg)
    assert 2.5e-3 < lfsr["max |bias|"] < 2.7e-3 and 1.0e-3 < lfsr["RMS bias"] < 1.2e-3
    assert lfsr["cycles"] == 65535
    sobol = stats.fixed_input_bias(cfg.replace(rng="sobol"))
    assert 1e-2 < sobol["max |bias|"] < 1.1e-2 and sobol["cycles"] == 256
    for c in (cfg.replace(rng_shift=True), cfg.replace(rng="sobol", rng_shift=True)):
        assert stats.fixed_input_bias(c)["max |bias|"] < 1e-7
    rows = {r["design"]: r for r in stats.fixed_bias_table(cfg, sources=("lfsr",), wider=())}
    split = next(r for name, r in rows.items() if "one 16-bit register" in name)
    assert split["max |bias|"] <= 1.0 / 65535 + 1e-12


@pytest.mark.parametrize("rng", ["lfsr", "sobol"])
@pytest.mark.parametrize("bl", [4, 32])
def test_fixed_input_bias_shortcut_equals_counting_every_cycle(rng, bl):
    """With the per-pair shift, joint_histogram convolves one period with the shift words' histogram; counting
    all lcm(period, BL * P_s) cycles one by one gives the same histogram (scaled by the ratio of lengths)."""
    from essop.golden.random_sources import joint_period, random_numbers
    cfg = EssopConfig(q=4, bl=bl, lfsr_width=6, lfsr_seed_x=5, lfsr_seed_d=9, rng=rng, rng_shift=True,
                      rng_shift_seed=3, sharing="per_element", rows=2, cols=3)
    hist, total = stats.joint_histogram(cfg, gx=2, gd=1)
    every = joint_period(cfg)
    brute = stats.stream_histogram(lambda c0, n: (random_numbers(cfg, "x", n, c0, generators=[2])[0],
                                                  random_numbers(cfg, "d", n, c0, generators=[1])[0]), every, 4)
    assert every % total == 0 or total % every == 0
    assert np.array_equal(hist * every, brute * total)
    assert hist.sum() == total


def test_relative_bias_equals_counting_the_period():
    """The default LFSR pair shrinks products of small equal magnitudes by a fixed fraction (the long-run
    mean over the joint period: what the training table's per-pair shift row tests); counted cycle by cycle
    from the two streams, independently of joint_histogram. With the per-pair shift the bias is gone."""
    from essop.golden.random_sources import random_numbers
    cfg = EssopConfig()
    rx, rd = random_numbers(cfg, "x", 65535, 0)[0], random_numbers(cfg, "d", 65535, 0)[0]
    got = stats.relative_bias(cfg, [4, 8, 16, 64, 255])
    for r in got:
        v = r["magnitude"]
        count = int(np.count_nonzero((rx < v) & (rd < v)))
        assert r["mean"] == count / 65535 and r["exact"] == v * v / 65536
        assert r["relative bias"] == pytest.approx(count / 65535 / (v * v / 65536) - 1, abs=1e-12)
    assert [round(r["relative bias"], 2) for r in got[:3]] == [-0.37, -0.41, -0.23]
    assert all(abs(r["relative bias"]) < 1e-3 for r in stats.relative_bias(cfg.replace(rng_shift=True), [4, 8, 16]))
    with pytest.raises(ValueError, match=r"magnitude must be in \[1, 255\], not 256"):
        stats.relative_bias(cfg, [256])


def test_bias_summary_of_every_pair_once_is_zero():
    q = 3
    grid = np.ones(1 << (2 * q), dtype=np.int64)
    r = stats.bias_summary(grid, 1 << (2 * q), q)
    assert r["max |bias|"] == 0 and r["RMS bias"] == 0


def test_source_labels_are_the_configurations_own():
    """Every SOURCES label is the rng_label of the configuration it sets (tables and configs name it alike)."""
    for label in stats.SOURCES:
        sharing = stats.source_sharings(label)[-1]
        assert stats.source_config(BASE, label, sharing).rng_label == label


def test_element_words_exist_per_element_only_and_decorrelate_neighbours():
    """Element words (one LFSR per side, a constant XOR word per element) are unbiased like every source, and
    their neighbouring counts are nearly uncorrelated (below 0.1 on 8 x 8; 0.2-0.3 with per_element LFSRs read
    at cycle offsets of one sequence; docs/statistics.md)."""
    rows, slopes = stats.bl_table(BASE, [8, 16], 600, seed=16, sources=("lfsr", "lfsr+words"))
    assert [(r["source"], r["sharing"], r["BL"]) for r in rows] == [
        ("lfsr", "shared", 8), ("lfsr", "shared", 16), ("lfsr", "per_element", 8), ("lfsr", "per_element", 16),
        ("lfsr+words", "per_element", 8), ("lfsr+words", "per_element", 16)]
    assert len(slopes) == 3
    offsets, words = rows[3], rows[5]
    assert abs(words["bias (SC)"]) < stats.BIAS_BOUND_SE * words["SE (SC)"], words
    assert offsets["corr (row neighbours)"] > 0.15 and offsets["corr (col neighbours)"] > 0.15, offsets
    assert abs(words["corr (row neighbours)"]) < 0.1 and abs(words["corr (col neighbours)"]) < 0.1, words
    assert words["RMSE (SC)"] == pytest.approx(offsets["RMSE (SC)"], rel=0.1)   # the same variance
    bias = stats.fixed_bias_table(EssopConfig(), sources=("lfsr+words",), alternatives=False)
    assert [r["design"] for r in bias] == ["lfsr+words, per_element"] and bias[0]["max |bias|"] < 3e-3
    with pytest.raises(ValueError, match="source must be one of"):
        stats.source_sharings("words")

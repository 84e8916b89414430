"""Estimator statistics: the golden model's products against the exact ones, over many random draws.

Each draw is one vector pair (or one accumulation group of several) of realistic vectors (essop.golden.workload:
ReLU-like x, Gaussian-like delta, FP16, at one random layer scale per group) processed by the golden model
(essop.golden.array.counts_reference) at a random position of the LFSR sequences (what run-on generators see
over a long run) and, across draws, with several random seed pairs. Two errors per product, both in units of
the group's full scale 2**(E_x + E_d) per pair:

- eps_q  = (C - E[C]) / BL, against E[C] = BL * s * a * b / 2**(2q), the expectation over the random numbers of
  the q-bit magnitudes: the stochastic-computing error alone (spec §5 says it is unbiased);
- eps_64 = (C * 2**E_out - delta_i * x_j) / 2**(E_x + E_d), against the exact FP64 product: adds the
  q-bit truncation of the magnitudes (spec §3), which shrinks magnitudes toward zero by < 2**-q of scale.

Draws are independent; elements within a draw are not (shared generators correlate them), so standard errors
come from the spread of per-draw means.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import counts_reference
from essop.golden.workload import activation_scale, error_scale, gaussian_errors, relu_activations

__all__ = [
    "Errors", "draw_errors", "summarize", "loglog_slope", "restart_counts", "bl_table", "restart_table",
    "steps_table", "BIAS_BOUND_SE"
]

#: |bias| is called consistent with zero when within this many standard errors.
BIAS_BOUND_SE = 4.0


@dataclass
class Errors:
    eps_q: np.ndarray        # float64 [draws, m, n]
    eps_64: np.ndarray       # float64 [draws, m, n]
    exact_sign: np.ndarray   # int8 [draws, m, n], sign of the exact product (0 where it is zero)


def draw_errors(cfg: EssopConfig, draws: int, seed: int, *, n_seeds: int = 1, pairs: int = 1,
                same_vector: bool = False) -> Errors:
    """Errors of `draws` groups of `pairs` pairs each. `same_vector` repeats one pair `pairs` times (a
    constant input accumulated over a group); otherwise every pair is fresh.

    Each draw starts at a uniformly random position of the LFSR sequences, which is what a random seed
    does (a seed is a state of the m-sequence). `n_seeds` > 1 also varies the configured seed pair, i.e. the
    alignment of the x and delta sequences; the pairs are drawn from `seed` alone, so every configuration
    uses the same ones (and the golden model's per-seed sequence cache is reused).
    With cfg.lfsr_restart every pair of a group restarts from the same random state: the group is evaluated
    pair by pair by the golden model at that one position and summed (`restart_counts`)."""
    if pairs > 1 and (cfg.scaling != "block" or cfg.acc_depth < pairs):
        raise ValueError(f"groups of {pairs} pairs need scaling='block' and acc_depth >= {pairs}")
    rng = np.random.default_rng(seed)
    period = (1 << cfg.lfsr_width) - 1
    seed_pairs = rng.integers(1, 1 << cfg.lfsr_width, size=(n_seeds, 2)) if n_seeds > 1 else \
        np.array([[cfg.lfsr_seed_x, cfg.lfsr_seed_d]])
    m, n, L = cfg.rows, cfg.cols, cfg.bl_log2
    eps_q = np.empty((draws, m, n))
    eps_64 = np.empty((draws, m, n))
    sign = np.empty((draws, m, n), dtype=np.int8)
    per_seed = -(-draws // len(seed_pairs))
    for k in range(draws):
        sx, sd = seed_pairs[k // per_seed]
        c = cfg.replace(lfsr_seed_x=int(sx), lfsr_seed_d=int(sd))
        # One layer scale per group (a layer's positions share it; block scaling relies on that).
        x_scale = activation_scale(rng)
        d_scale = error_scale(rng)
        if same_vector:
            xs = np.repeat(relu_activations(rng, n, x_scale)[None], pairs, axis=0)
            ds = np.repeat(gaussian_errors(rng, m, d_scale)[None], pairs, axis=0)
        else:
            xs = np.stack([relu_activations(rng, n, x_scale) for _ in range(pairs)])
            ds = np.stack([gaussian_errors(rng, m, d_scale) for _ in range(pairs)])
        ex = max(fp16.vector_exponent(v) for v in xs)
        ed = max(fp16.vector_exponent(v) for v in ds)
        start = int(rng.integers(0, period))
        if cfg.lfsr_restart:
            counts = restart_counts(c, xs, ds, ex, ed, start)
        else:
            counts, _ = counts_reference(c, xs, ds, ex, ed, start_pair=start)
        a, s_x, _, _ = fp16.to_magnitudes(xs, ex, cfg.q)
        b, s_d, _, _ = fp16.to_magnitudes(ds, ed, cfg.q)
        sa = (1 - 2 * s_x.astype(np.int64)) * a          # [P, n]
        sb = (1 - 2 * s_d.astype(np.int64)) * b          # [P, m]
        expect_scaled = (sb.T @ sa).astype(np.float64) / float(1 << (2 * cfg.q))   # E[C] / BL
        x64 = xs.view(np.float16).astype(np.float64)
        d64 = ds.view(np.float16).astype(np.float64)
        exact = d64.T @ x64
        c_scaled = counts.astype(np.float64) / (1 << L)
        eps_q[k] = (c_scaled - expect_scaled) / pairs
        eps_64[k] = (c_scaled * 2.0 ** (-cfg.lr_shift) - exact * 2.0 ** (-(ex + ed))) / pairs
        sign[k] = np.sign(exact).astype(np.int8)
    return Errors(eps_q, eps_64, sign)


def restart_counts(cfg: EssopConfig, xs, ds, exp_x: int, exp_d: int, start_pair: int) -> np.ndarray:
    """Counts of a group under lfsr_restart whose seeds are the run-on states at pair `start_pair`: every pair
    uses the same BL random numbers, so each is the golden model's run-on count at that one position.
    (Equal to counts_reference with cfg.lfsr_restart and those seeds — tests/golden/test_statistics.py checks
    it — without recomputing the m-sequence for every random seed.)"""
    run_on = cfg.replace(lfsr_restart=False)
    total = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
    for p in range(len(xs)):
        counts, _ = counts_reference(run_on, xs[p:p + 1], ds[p:p + 1], exp_x, exp_d, start_pair=start_pair)
        total += counts
    return total


def _bias(eps: np.ndarray) -> tuple[float, float]:
    per_draw = eps.reshape(len(eps), -1).mean(axis=1)
    return float(per_draw.mean()), float(per_draw.std(ddof=1) / np.sqrt(len(per_draw)))


def _neighbour_corr(eps: np.ndarray, sign: np.ndarray, axis: int) -> float:
    """Pearson correlation between the sign-aligned errors of adjacent nonzero products along `axis` (2: same
    row, next column; 1: same column, next row). Elements of a row share their delta bitstream in both modes;
    shared generators add the correlation of one random number for all comparators."""
    a = np.moveaxis(eps * sign, axis, -1)
    nz = np.moveaxis(sign != 0, axis, -1)
    both = (nz[..., :-1] & nz[..., 1:]).ravel()    # zero products have no error to correlate
    u, v = a[..., :-1].ravel()[both], a[..., 1:].ravel()[both]
    if len(u) == 0 or u.std() == 0 or v.std() == 0:
        return float("nan")
    return float(np.corrcoef(u, v)[0, 1])


def summarize(err: Errors) -> dict:
    bias_q, se_q = _bias(err.eps_q)
    bias_64, se_64 = _bias(err.eps_64)
    # Truncation shrinks magnitudes: the error projected on the product's sign shows it.
    toward, se_toward = _bias(err.eps_64 * err.exact_sign)
    return {
        "bias (SC)": bias_q, "SE (SC)": se_q, "z (SC)": bias_q / se_q if se_q else float("nan"),
        "RMSE (SC)": float(np.sqrt(np.mean(err.eps_q ** 2))),
        "bias vs FP64": bias_64, "z vs FP64": bias_64 / se_64 if se_64 else float("nan"),
        "magnitude bias vs FP64": toward, "SE magnitude bias": se_toward,
        "RMSE vs FP64": float(np.sqrt(np.mean(err.eps_64 ** 2))),
        "corr (row neighbours)": _neighbour_corr(err.eps_q, err.exact_sign, 2),
        "corr (col neighbours)": _neighbour_corr(err.eps_q, err.exact_sign, 1),
    }


def loglog_slope(bls, rmses) -> float:
    """Least-squares slope of log(RMSE) against log(BL); 1/sqrt(BL) scaling gives -0.5."""
    return float(np.polyfit(np.log(np.asarray(bls, float)), np.log(np.asarray(rmses, float)), 1)[0])


# ---- the tables of `essop stats` -------------------------------------------------------------------------
def bl_table(base: EssopConfig, bls, draws: int, seed: int, progress=None, n_seeds: int = 4) -> tuple[list[dict], list[dict]]:
    """Bias, RMSE and neighbour correlation against BL for both sharing modes; and the fitted slopes."""
    rows, slopes = [], []
    for sharing in ("shared", "per_element"):
        rmse_q, rmse_64 = [], []
        for bl in bls:
            cfg = base.replace(bl=bl, sharing=sharing)
            s = summarize(draw_errors(cfg, draws, seed, n_seeds=n_seeds))
            rows.append({"sharing": sharing, "BL": bl, **s})
            rmse_q.append(s["RMSE (SC)"])
            rmse_64.append(s["RMSE vs FP64"])
            if progress:
                progress.update()
        slopes.append({"sharing": sharing, "BL range": f"{min(bls)}..{max(bls)}",
                       "slope log RMSE (SC) vs log BL": loglog_slope(bls, rmse_q),
                       "slope log RMSE vs FP64 vs log BL": loglog_slope(bls, rmse_64)})
    return rows, slopes


def restart_table(base: EssopConfig, depths, draws: int, seed: int, progress=None, n_seeds: int = 4) -> list[dict]:
    """RMSE of a group of K accumulated pairs (per pair), run-on vs restart, fresh vs repeated vectors."""
    rows = []
    for same in (False, True):
        for k in depths:
            row = {"vectors": "one pair repeated" if same else "fresh pairs", "pairs per group K": k}
            for restart in (False, True):
                cfg = base.replace(acc_depth=max(k, 1), scaling="block", lfsr_restart=restart)
                s = summarize(draw_errors(cfg, draws, seed, pairs=k, same_vector=same, n_seeds=n_seeds))
                row["RMSE (SC) " + ("restart" if restart else "run-on")] = s["RMSE (SC)"]
                if progress:
                    progress.update()
            rows.append(row)
    return rows


def steps_table(base: EssopConfig, steps, bls, draws: int, seed: int, progress=None, n_seeds: int = 4) -> list[dict]:
    """Effect of LFSR shifts per cycle: with 1 shift, consecutive q-bit numbers share q-1 bits."""
    rows = []
    for bl in bls:
        for s_ in steps:
            cfg = base.replace(bl=bl, lfsr_steps=s_)
            s = summarize(draw_errors(cfg, draws, seed, n_seeds=n_seeds))
            rows.append({"BL": bl, "lfsr_steps": s_, "RMSE (SC)": s["RMSE (SC)"], "z (SC)": s["z (SC)"],
                         "RMSE vs FP64": s["RMSE vs FP64"]})
            if progress:
                progress.update()
    return rows

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

The fixed-input bias (`fixed_input_bias`) is exact rather than sampled: for one x generator and one delta
generator it counts every cycle of their joint period (essop.golden.random_sources.joint_period), so it is the
long-run mean of C / BL minus a * b / 2**(2q) for every pair of magnitudes (a, b) at once — what accumulating one
repeated input forever converges to.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from essop import lfsr_params
from essop.checks import check_int
from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import counts_reference
from essop.golden.random_sources import joint_period, pair_words, random_numbers
from essop.golden.workload import activation_scale, error_scale, gaussian_errors, relu_activations
from essop.plotting import pyplot, save_figure

__all__ = [
    "Errors", "draw_errors", "summarize", "loglog_slope", "restart_counts", "bl_table", "restart_table",
    "steps_table", "plot_rmse", "BIAS_BOUND_SE", "SOURCES", "source_sharings", "source_config", "fixed_input_bias",
    "fixed_input_bias_per_element", "relative_bias", "below_counts", "fixed_bias_table", "joint_histogram",
    "stream_histogram", "bias_summary",
    "xor_convolve", "MAX_JOINT_CYCLES"
]

#: |bias| is called consistent with zero when within this many standard errors.
BIAS_BOUND_SE = 4.0
#: The random-number sources the tables compare, by label: the EssopConfig fields each sets.
SOURCES = {
    "lfsr": {"rng": "lfsr", "rng_shift": False, "element_words": False},
    "lfsr+shift": {"rng": "lfsr", "rng_shift": True, "element_words": False},
    "lfsr+words": {"rng": "lfsr", "rng_shift": False, "element_words": True},
    "sobol": {"rng": "sobol", "rng_shift": False, "element_words": False},
    "sobol+shift": {"rng": "sobol", "rng_shift": True, "element_words": False},
}
#: Longest joint period fixed_input_bias counts cycle by cycle.
MAX_JOINT_CYCLES = 1 << 27


def _source_fields(source: str) -> dict:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(map(repr, SOURCES))}, not {source!r}")
    return SOURCES[source]


def source_sharings(source: str) -> tuple[str, ...]:
    """The sharing modes a SOURCES label exists in: element words are per-element numbers by construction."""
    return ("per_element",) if _source_fields(source)["element_words"] else ("shared", "per_element")


def source_config(base: EssopConfig, source: str, sharing: str | None = None) -> EssopConfig:
    """`base` with the random-number source named by a SOURCES label (and the sharing mode, if given)."""
    return base.replace(**_source_fields(source), **({} if sharing is None else {"sharing": sharing}))


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
    # Start positions in pairs: uniform over a range that covers every source's period many times (LFSR: its
    # period; Sobol: 2**q / BL blocks; the per-pair shift: 2**(2q) - 1 pairs).
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


# ---- the exact fixed-input bias ---------------------------------------------------------------------------
def stream_histogram(streams, total: int, q: int, chunk: int = 1 << 22) -> np.ndarray:
    """H[R_d * 2**q + R_x]: how often each pair of numbers occurs in `total` cycles of
    `streams(start, n) -> (R_x, R_d)` (int64 [n] each)."""
    Q = 1 << q
    hist = np.zeros(Q * Q, dtype=np.int64)
    for c0 in range(0, total, chunk):
        rx, rd = streams(c0, min(chunk, total - c0))
        hist += np.bincount(rd * Q + rx, minlength=Q * Q)
    return hist


def _walsh_hadamard(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    h = 1
    while h < len(v):
        u = v.reshape(-1, 2, h)
        v = np.stack([u[:, 0] + u[:, 1], u[:, 0] - u[:, 1]], axis=1).reshape(-1)
        h *= 2
    return v


def xor_convolve(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(f * g)[k] = sum_i f[i] g[i XOR k], exactly (integer Walsh-Hadamard transforms; entries must stay far
    below 2**63 / len(f))."""
    return _walsh_hadamard(_walsh_hadamard(f) * _walsh_hadamard(g)) // len(f)


def joint_histogram(cfg: EssopConfig, gx: int = 0, gd: int = 0) -> tuple[np.ndarray, int]:
    """(H, cycles): H[R_d * 2**q + R_x] over the whole joint period of x generator gx and delta generator gd.

    Without the per-pair shift (or with restart) the cycles of the joint period are counted one by one. With
    it, pair p reads the block of cycles starting at p * BL (mod the source's period, K distinct blocks) and
    shift state p (mod P_s = 2**rng_shift_width - 1); when gcd(K, P_s) = 1 every (block, shift) combination
    occurs equally often, so H is the XOR convolution of one period's histogram without shift with the shift
    words' histogram over P_s states (exact, P_s times the period's cycles). Otherwise the lcm is counted."""
    q = cfg.q

    def count(c: EssopConfig, total: int) -> np.ndarray:
        if total > MAX_JOINT_CYCLES:
            raise ValueError(f"the joint period of {c.name} is {total} cycles, more than the "
                             f"{MAX_JOINT_CYCLES} fixed_input_bias counts")
        return stream_histogram(lambda c0, n: (random_numbers(c, "x", n, c0, generators=[gx])[0],
                                               random_numbers(c, "d", n, c0, generators=[gd])[0]), total, q)

    if cfg.lfsr_restart or not cfg.rng_shift:
        total = joint_period(cfg)
        return count(cfg, total), total
    period, Ps = cfg.rng_period, (1 << cfg.rng_shift_width) - 1
    K = period // math.gcd(period, cfg.bl)
    if math.gcd(K, Ps) != 1:
        total = joint_period(cfg)
        return count(cfg, total), total
    if Ps > MAX_JOINT_CYCLES:
        raise ValueError(f"the shift register of {cfg.name} has {Ps} states, more than the {MAX_JOINT_CYCLES} "
                         f"fixed_input_bias counts")
    plain = count(cfg.replace(rng_shift=False), period)
    pairs = np.arange(Ps, dtype=np.int64)
    words = pair_words(cfg, "d", pairs) * (1 << q) + pair_words(cfg, "x", pairs)
    return xor_convolve(plain, np.bincount(words, minlength=1 << (2 * q))), period * Ps


def below_counts(hist: np.ndarray, q: int) -> np.ndarray:
    """N[b, a] = #{cycles: R_d < b and R_x < a} for a, b in [0, 2**q), from a joint histogram (stream_histogram's
    layout): the count of fixed magnitudes (a, b) over those cycles."""
    Q = 1 << q
    return np.pad(hist.reshape(Q, Q).cumsum(0).cumsum(1), ((1, 0), (1, 0)))[:Q, :Q]


def bias_summary(hist: np.ndarray, total: int, q: int) -> dict:
    """From a joint histogram (stream_histogram's layout) over `total` cycles: the max and the RMS over all
    magnitude pairs (a, b) in [0, 2**q - 1]**2 of the long-run bias of C / BL, N(a, b) / total - a b / 2**(2q)
    with N(a, b) = #{cycles: R_x < a and R_d < b}, in units of full scale, and where the largest sits."""
    Q = 1 << q
    N = below_counts(hist, q)
    a = np.arange(Q)
    dev = N / total - np.outer(a, a) / float(Q * Q)
    b_max, a_max = np.unravel_index(np.argmax(np.abs(dev)), dev.shape)
    return {"max |bias|": float(np.abs(dev).max()), "RMS bias": float(np.sqrt(np.mean(dev ** 2))),
            "at (a, b)": f"({a_max}, {b_max})", "cycles": total}


def fixed_input_bias(cfg: EssopConfig, gx: int = 0, gd: int = 0) -> dict:
    """Exact long-run bias of x generator gx with delta generator gd for every pair of fixed magnitudes
    (bias_summary) over their whole joint period (joint_histogram)."""
    hist, total = joint_histogram(cfg, gx, gd)
    return bias_summary(hist, total, cfg.q)


def relative_bias(cfg: EssopConfig, magnitudes, gx: int = 0, gd: int = 0) -> list[dict]:
    """The fixed-input bias of equal magnitudes a = b = v relative to the exact product: the long-run mean of
    C / BL over the whole joint period (joint_histogram) divided by v**2 / 2**(2q), minus 1, for each v. Small
    magnitudes are where a pairing of the two sides' numbers shows (bias_summary's maximum is absolute)."""
    q = cfg.q
    Q = 1 << q
    hist, total = joint_histogram(cfg, gx, gd)
    N = below_counts(hist, q)
    out = []
    for v in magnitudes:
        check_int("magnitude", v, 1, Q - 1)
        exact = v * v / float(Q * Q)
        out.append({"magnitude": v, "exact": exact, "mean": N[v, v] / total,
                    "relative bias": N[v, v] / total / exact - 1.0})
    return out


def fixed_input_bias_per_element(cfg: EssopConfig) -> dict:
    """per_element: the worst and the RMS of fixed_input_bias over four generator pairs (0, 0), (0, 1), (1, 0)
    and (m - 1, n - 1) (each pair of generators has its own alignment or digital shifts)."""
    pairs = sorted({(0, 0), (0, min(1, cfg.cols - 1)), (min(1, cfg.rows - 1), 0), (cfg.rows - 1, cfg.cols - 1)})
    res = [fixed_input_bias(cfg, gx=j, gd=i) for i, j in pairs]
    worst = max(res, key=lambda r: r["max |bias|"])
    return {**worst, "RMS bias": float(np.sqrt(np.mean([r["RMS bias"] ** 2 for r in res]))),
            "generator pairs": len(res)}


def _lfsr_alternatives(base: EssopConfig, wider=(20,)) -> list[tuple[str, EssopConfig | None, object]]:
    """(label, configuration or None, streams and total) of LFSR designs that pair the two sides otherwise:
    what reduces the joint bias of the default (docs/statistics.md)."""
    lf = base.replace(rng="lfsr", rng_shift=False, sharing="shared")
    q, w = lf.q, lf.lfsr_width
    out = []
    # Different step counts on the two sides: R_x as configured, R_d from the delta generator stepped otherwise.
    S = lf.steps_per_cycle
    other = next(s for s in range(S + 1, 4 * S + 8) if np.gcd(s, (1 << w) - 1) == 1)
    cd = lf.replace(lfsr_steps=other)
    out.append((f"lfsr, delta side {other} shifts per cycle (x side {S})", None,
                (lambda c0, n: (random_numbers(lf, "x", n, c0)[0], random_numbers(cd, "d", n, c0)[0]),
                 lf.rng_period)))
    # One register for both sides: x = bits [0, q), delta = bits [q, 2q) of one w >= 2q state, 2q shifts.
    if 2 * q <= w:
        steps = lfsr_params.default_steps(w, 2 * q)
        one = lf.replace(q=2 * q, lfsr_steps=steps)
        mask = (1 << q) - 1

        def split(c0, n):
            v = random_numbers(one, "x", n, c0)[0]
            return v & mask, (v >> q) & mask
        out.append((f"lfsr, one {w}-bit register: x = bits 0..{q - 1}, delta = bits {q}..{2 * q - 1}, "
                    f"{steps} shifts per cycle", None, (split, one.rng_period)))
    for wide in wider:
        out.append((f"lfsr, w = {wide}", lf.replace(lfsr_width=wide), None))
    return out


def fixed_bias_table(base: EssopConfig, sources=("lfsr", "sobol", "sobol+shift"), alternatives: bool = True,
                     progress=None, wider=(20,)) -> list[dict]:
    """Exact fixed-input bias per source and sharing mode (per_element: the worst of four generator pairs),
    and, with `alternatives`, LFSR designs that pair the two sides otherwise (shared) and LFSRs of the `wider`
    widths."""
    rows = []
    for source in sources:
        for sharing in source_sharings(source):
            cfg = source_config(base, source, sharing)
            r = fixed_input_bias(cfg) if sharing == "shared" else fixed_input_bias_per_element(cfg)
            rows.append({"design": f"{source}, {sharing}", "max |bias|": r["max |bias|"],
                         "RMS bias": r["RMS bias"], "at (a, b)": r["at (a, b)"], "cycles": r["cycles"]})
            if progress:
                progress.update()
    if alternatives:
        for label, cfg, custom in _lfsr_alternatives(base, wider):
            if cfg is not None:
                r = fixed_input_bias(cfg)
            else:
                streams, total = custom
                r = bias_summary(stream_histogram(streams, total, base.q), total, base.q)
            rows.append({"design": label, "max |bias|": r["max |bias|"], "RMS bias": r["RMS bias"],
                         "at (a, b)": r["at (a, b)"], "cycles": r["cycles"]})
            if progress:
                progress.update()
    return rows


# ---- the tables of `essop stats` -------------------------------------------------------------------------
def bl_table(base: EssopConfig, bls, draws: int, seed: int, progress=None, n_seeds: int = 4,
             sources=("lfsr",)) -> tuple[list[dict], list[dict]]:
    """Bias, RMSE and neighbour correlation against BL for every source (SOURCES labels) in the sharing modes
    it exists in (source_sharings); and the fitted slopes."""
    rows, slopes = [], []
    for source in sources:
        for sharing in source_sharings(source):
            rmse_q, rmse_64 = [], []
            for bl in bls:
                cfg = source_config(base, source, sharing).replace(bl=bl)
                s = summarize(draw_errors(cfg, draws, seed, n_seeds=n_seeds))
                rows.append({"source": source, "sharing": sharing, "BL": bl, **s})
                rmse_q.append(s["RMSE (SC)"])
                rmse_64.append(s["RMSE vs FP64"])
                if progress:
                    progress.update()
            slopes.append({"source": source, "sharing": sharing, "BL range": f"{min(bls)}..{max(bls)}",
                           "slope log RMSE (SC) vs log BL": loglog_slope(bls, rmse_q),
                           "slope log RMSE vs FP64 vs log BL": loglog_slope(bls, rmse_64)})
    return rows, slopes


def plot_rmse(rows: list[dict], path, column: str = "RMSE (SC)", title: str = ""):
    """RMSE against BL (log-log), one line per (source, sharing) of bl_table's rows, with 1/sqrt(BL) and 1/BL
    guides."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    keys = list(dict.fromkeys((r["source"], r["sharing"]) for r in rows))
    for source, sharing in keys:
        pts = sorted((r["BL"], r[column]) for r in rows if (r["source"], r["sharing"]) == (source, sharing))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if sharing == "shared" else "s--",
                label=f"{source}, {sharing}", ms=4)
    bls = sorted({r["BL"] for r in rows})
    first = [r[column] for r in rows if r["BL"] == bls[0]]
    ax.plot(bls, [max(first) * (bls[0] / b) ** 0.5 for b in bls], "k:", lw=0.8, label="1/sqrt(BL)")
    ax.plot(bls, [min(first) * (bls[0] / b) for b in bls], "k-.", lw=0.8, label="1/BL")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bitstream length BL")
    ax.set_ylabel(f"{column} (fraction of full scale)")
    ax.set_title(title or "ESSOP estimator error against BL, by random-number source")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


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

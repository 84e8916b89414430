"""Input streams for the array: realistic vector pairs, directed edge cases, accumulation groups.

Everything is drawn from one `numpy.random.Generator`, so a regression seed reproduces the whole stream.
A stream is what the RTL's input port sees, pair by pair: x and delta bit patterns, the block exponents
and the `last` flag (spec §6, §9).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from essop.config import EssopConfig
from essop.fp16_format import (EXP_FIELD_MAX, EXP_SHIFT, FRAC_WIDTH, INF16, MAX_FINITE16, MIN_SUBNORMAL16, NAN16,
                               NEG_INF16, NEG_ZERO16, SIGN_MASK, SIGN_SHIFT)
from essop.golden import fp16
from essop.golden.workload import gaussian_errors, relu_activations

__all__ = ["Stream", "build_stream"]


@dataclass
class Stream:
    """A sequence of input transfers: pair p is (xs[p], ds[p], exp_x[p], exp_d[p], last[p])."""
    xs: np.ndarray      # uint16 [P, cols]
    ds: np.ndarray      # uint16 [P, rows]
    exp_x: np.ndarray   # int64 [P], driven on i_exp_x (used by the array only with block scaling)
    exp_d: np.ndarray   # int64 [P]
    last: np.ndarray    # bool [P]
    labels: list[str]   # what each pair exercises, for logs

    def __len__(self) -> int:
        return len(self.last)


# ---- vectors: realistic ones from essop.golden.workload, edge cases here ---------------------------------
def _random_bits(rng, n, lo_exp_field, hi_exp_field) -> np.ndarray:
    """Random finite patterns with biased exponent fields in [lo, hi] and random signs and fractions."""
    e = rng.integers(lo_exp_field, hi_exp_field + 1, n)
    f = rng.integers(0, 1 << FRAC_WIDTH, n)
    s = rng.integers(0, 2, n)
    return ((s << SIGN_SHIFT) | (e << EXP_SHIFT) | f).astype(np.uint16)


def _directed(rng: np.random.Generator, n: int, m: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, x, delta) edge cases of spec §1-§3 and §7."""
    def full(k, v):
        return np.full(k, v, dtype=np.uint16)

    def sprinkle(vec, values):
        vec = vec.copy()
        idx = rng.integers(0, len(vec))
        vec[idx] = values[rng.integers(0, len(values))]
        return vec

    cases = [
        ("all zero", full(n, 0), full(m, 0)),
        ("+0/-0", rng.choice([0, NEG_ZERO16], n).astype(np.uint16),
         rng.choice([0, NEG_ZERO16], m).astype(np.uint16)),
        ("zero x", full(n, 0), gaussian_errors(rng, m)),
        ("zero delta", relu_activations(rng, n), rng.choice([0, NEG_ZERO16], m).astype(np.uint16)),
        ("largest magnitudes", rng.choice([MAX_FINITE16, MAX_FINITE16 | SIGN_MASK], n).astype(np.uint16),
         rng.choice([MAX_FINITE16, MAX_FINITE16 | SIGN_MASK], m).astype(np.uint16)),
        ("largest x, tiny delta", full(n, MAX_FINITE16), _random_bits(rng, m, 0, 2)),
        ("subnormals", _random_bits(rng, n, 0, 0), _random_bits(rng, m, 0, 0)),
        ("smallest subnormal", full(n, MIN_SUBNORMAL16), full(m, MIN_SUBNORMAL16 | SIGN_MASK)),
        ("mixed exponents", _random_bits(rng, n, 0, EXP_FIELD_MAX - 1),
         _random_bits(rng, m, 0, EXP_FIELD_MAX - 1)),
        ("tiny delta", relu_activations(rng, n), _random_bits(rng, m, 0, 4)),
        # Signalling NaN 0x7C01, negative NaN, and a NaN payload besides the canonical quiet NaN.
        ("NaN/Inf in x", sprinkle(relu_activations(rng, n), [INF16, NEG_INF16, NAN16, INF16 | 1, NAN16 | SIGN_MASK]),
         gaussian_errors(rng, m)),
        ("NaN/Inf in delta", relu_activations(rng, n),
         sprinkle(gaussian_errors(rng, m), [INF16, NEG_INF16, NAN16, 0x7D55])),
        ("all Inf", full(n, INF16), full(m, NEG_INF16)),
    ]
    return cases


# ---- groups and exponents --------------------------------------------------------------------------------
def _group_lengths(rng: np.random.Generator, cfg: EssopConfig, n_pairs: int) -> list[tuple[int, bool]]:
    """Split n_pairs into groups: (length, ends_at_last). Lengths cover 1, acc_depth and values between;
    a full group ends at acc_depth whether or not its last pair is marked."""
    out, left = [], n_pairs
    choices = sorted({1, 2, cfg.acc_depth // 2, cfg.acc_depth - 1, cfg.acc_depth} & set(range(1, cfg.acc_depth + 1)))
    while left > 0:
        k = int(rng.choice(choices))
        k = min(k, left)
        # A group shorter than acc_depth must end at `last`; a full one ends by itself, `last` random.
        marked = True if k < cfg.acc_depth else bool(rng.integers(0, 2))
        out.append((k, marked))
        left -= k
    return out


def _block_exponent(cfg: EssopConfig, rng: np.random.Generator, vectors: np.ndarray) -> int:
    """A block exponent for the vectors of one group: usually the exact one (max over the group), sometimes
    larger (headroom, fewer magnitude bits used) or too small (the array must saturate and flag it)."""
    exact = max(fp16.vector_exponent(v) for v in vectors)
    offset = int(rng.choice([0, 0, 0, 1, 3, -1, -4]))
    return int(np.clip(exact + offset, cfg.exp_port_min, cfg.exp_port_max))


def build_stream(cfg: EssopConfig, rng: np.random.Generator, n_random: int, directed: bool = True) -> Stream:
    """Directed edge cases first, then n_random realistic pairs, arranged into accumulation groups."""
    n, m = cfg.cols, cfg.rows
    vecs: list[tuple[str, np.ndarray, np.ndarray]] = list(_directed(rng, n, m)) if directed else []
    vecs += [("realistic", relu_activations(rng, n), gaussian_errors(rng, m)) for _ in range(n_random)]
    P = len(vecs)
    xs = np.stack([v[1] for v in vecs]).astype(np.uint16)
    ds = np.stack([v[2] for v in vecs]).astype(np.uint16)
    labels = [v[0] for v in vecs]
    # Exponent ports are driven with noise by default: per-pair scaling must ignore them, and block scaling
    # must take only the first pair's of each group.
    exp_x = rng.integers(cfg.exp_port_min, cfg.exp_port_max + 1, P)
    exp_d = rng.integers(cfg.exp_port_min, cfg.exp_port_max + 1, P)
    last = rng.integers(0, 2, P).astype(bool)
    if cfg.acc_depth > 1:
        last[:] = False
        start = 0
        for k, marked in _group_lengths(rng, cfg, P):
            end = start + k - 1
            last[end] = marked
            if cfg.scaling == "block":
                exp_x[start] = _block_exponent(cfg, rng, xs[start:end + 1])
                exp_d[start] = _block_exponent(cfg, rng, ds[start:end + 1])
            start = end + 1
        last[-1] = True     # the stream must not end inside a group
    elif cfg.scaling == "block":
        for p in range(P):
            exp_x[p] = _block_exponent(cfg, rng, xs[p:p + 1])
            exp_d[p] = _block_exponent(cfg, rng, ds[p:p + 1])
    return Stream(xs, ds, exp_x.astype(np.int64), exp_d.astype(np.int64), last, labels)

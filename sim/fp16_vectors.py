"""Operand sets and the NumPy reference for verifying the FP16 multiplier (hdl/fp16_mul.py).

The reference is NumPy's float16 multiply: it computes in float32, where the product of two binary16 values is
exact (22 significant bits), then rounds once to binary16 (nearest, ties to even) — a correctly rounded result.
NaN results are compared by NaN-ness only (the RTL always returns 0x7E00; NumPy may keep a payload or sign);
every other result bit for bit.
"""
from __future__ import annotations

import numpy as np

from essop.fp16_format import (EXP_FIELD_MAX, EXP_SHIFT, FRAC_MASK, INF16, MAGNITUDE_MASK, MAX_FINITE16,
                               MIN_NORMAL16, MIN_SUBNORMAL16, NAN16, NEG_INF16, NEG_ZERO16, SIGN_MASK, SIGN_SHIFT)

__all__ = ["reference", "mismatches", "random_all_classes", "rounding_ties", "boundaries", "directed"]


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit patterns of float16(a) * float16(b) (uint16)."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    with np.errstate(all="ignore"):
        return (a.view(np.float16) * b.view(np.float16)).view(np.uint16)


def mismatches(a, b, out) -> list[tuple[int, int, int, int]]:
    """(a, b, expected, got) for every wrong result: NaN must be 0x7E00, anything else the exact bits."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    out = np.asarray(out, dtype=np.uint16)
    ref = reference(a, b)
    is_nan = np.isnan(ref.view(np.float16))
    ok = np.where(is_nan, out == NAN16, out == ref)
    return [(int(a[i]), int(b[i]), int(ref[i]), int(out[i])) for i in np.nonzero(~ok)[0]]


def random_all_classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform bit patterns (every class) mixed with operands whose exponents are drawn from the edges:
    zero/subnormal, smallest normals, around 1, largest normals, Inf/NaN."""
    a = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    b = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    edge_exps = np.array([0, 0, 1, 2, 3, 7, 12, 14, 15, 16, 18, 25, 28, 29, 30, EXP_FIELD_MAX], dtype=np.uint16)
    half = n // 2
    for v in (a, b):
        v[:half] = (v[:half] & (SIGN_MASK | FRAC_MASK)) | (rng.choice(edge_exps, half) << EXP_SHIFT)
    return a, b


def _is_tie(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where the exact product lies exactly halfway between two binary16 values (finite, nonzero)."""
    with np.errstate(all="ignore"):   # Inf/NaN operands are simply not ties
        p = a.view(np.float16).astype(np.float64) * b.view(np.float16).astype(np.float64)  # exact in float64
        up = np.nextafter(p, np.inf).astype(np.float16)
        down = np.nextafter(p, -np.inf).astype(np.float16)
        finite = np.isfinite(p) & (p != 0) & np.isfinite(up) & np.isfinite(down)
        return finite & (up != down) & (p.astype(np.float16).astype(np.float64) != p)


def rounding_ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n operand pairs whose exact product is a rounding tie: normal and subnormal results, both signs,
    ties that round up (odd) and down (even)."""
    out_a, out_b = [], []
    # b with a short significand (1.1b, 1.01b, 1.11b, ...) times random a: the product's bits below the
    # 11th are often exactly 100..0.
    short = np.array([0x3E00, 0x3D00, 0x3F00, 0x3C80, 0x3E80, 0x3F80, 0x3CC0, 0x3D40], dtype=np.uint16)
    got = 0
    while got < n:
        k = 4096
        a = rng.integers(0, 1 << 16, k, dtype=np.uint32).astype(np.uint16) & MAGNITUDE_MASK
        b = rng.choice(short, k)
        b = (b & (SIGN_MASK | FRAC_MASK)) | (rng.integers(1, EXP_FIELD_MAX, k).astype(np.uint16) << EXP_SHIFT)  # normal
        b |= rng.integers(0, 2, k).astype(np.uint16) << SIGN_SHIFT
        a |= rng.integers(0, 2, k).astype(np.uint16) << SIGN_SHIFT
        t = _is_tie(a, b)
        out_a.append(a[t])
        out_b.append(b[t])
        got += int(t.sum())
    return np.concatenate(out_a)[:n], np.concatenate(out_b)[:n]


def boundaries(rng: np.random.Generator, per_target: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Products around the overflow threshold (65504, 65520), the normal/subnormal edge (2**-14), the
    smallest subnormal (2**-24) and half of it (2**-25, where results round to zero or up)."""
    targets = [65504.0, 65520.0, 65536.0, 2.0 ** -14, 2.0 ** -14 * (1 - 2 ** -11), 2.0 ** -24,
               2.0 ** -25, 1.5 * 2.0 ** -25, 2.0 ** -26]
    out_a, out_b = [], []
    for t in targets:
        # a random in [1, 256) or a subnormal/small value, b = t / a rounded, then b nudged by -2..+2 ulps.
        a = np.concatenate([rng.uniform(1.0, 256.0, per_target // 2),
                            rng.uniform(2.0 ** -20, 2.0 ** -10, per_target - per_target // 2)]).astype(np.float16)
        with np.errstate(over="ignore"):   # b may overflow to Inf: clipped to the largest finite below
            b = (t / a.astype(np.float64)).astype(np.float16).view(np.uint16)
        nudge = rng.integers(-2, 3, per_target).astype(np.int32)
        b = np.clip(b.astype(np.int32) + nudge, 0, MAX_FINITE16).astype(np.uint16)
        sign = rng.integers(0, 2, per_target).astype(np.uint16) << SIGN_SHIFT
        out_a.append(a.view(np.uint16) | sign)
        out_b.append(b)
    return np.concatenate(out_a), np.concatenate(out_b)


#: (name, a, b) hand-picked cases: signed zeros, Inf x 0, NaN in, overflow, underflow, subnormal x normal.
directed = [
    ("one_times_one", 0x3C00, 0x3C00),
    ("neg_zero_times_pos", NEG_ZERO16, 0x3C00),
    ("zero_times_neg_zero", 0x0000, NEG_ZERO16),
    ("inf_times_zero", INF16, 0x0000),
    ("neg_inf_times_two", NEG_INF16, 0x4000),
    ("nan_times_one", NAN16 | 1, 0x3C00),
    ("one_times_snan", 0x3C00, INF16 | 1),
    ("max_times_two", MAX_FINITE16, 0x4000),
    ("max_times_one", MAX_FINITE16, 0x3C00),
    ("min_sub_times_half", MIN_SUBNORMAL16, 0x3800),
    ("min_sub_times_0_75", MIN_SUBNORMAL16, 0x3A00),
    ("min_sub_times_min_sub", MIN_SUBNORMAL16, MIN_SUBNORMAL16),
    ("min_normal_times_half", MIN_NORMAL16, 0x3800),
    ("sub_times_big", 0x0123, 0x6400),
    ("largest_sub_times_1_0009", 0x03FF, 0x3C01),
    ("neg_tiny_rounds_to_neg_zero", 0x8001, 0x3400),
]

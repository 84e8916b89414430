"""FP16 blocks of the golden model: decode, shared exponent, magnitude shift, count-to-FP16 (spec §1-3, §7).

Plain integer NumPy, written from docs/spec.md alone. Arrays of uint16 bit patterns in, integers out.
"""
from __future__ import annotations

import numpy as np

from essop.config import EXP_MIN
from essop.fp16_format import (BIAS, EXP_FIELD_MAX, EXP_OFFSET, EXP_SHIFT, FRAC_MASK, FRAC_WIDTH, HIDDEN_BIT,
                               INF16, MIN_NORMAL_EXP, NAN16, SIGN_SHIFT, SUBNORMAL_EXP)

__all__ = ["NAN16", "INF16", "as_bits", "decode", "element_exponent", "vector_exponent", "to_magnitudes",
           "count_to_fp16"]


def as_bits(values) -> np.ndarray:
    """FP16 bit patterns as uint16: accepts uint16/int bit patterns or float16 values."""
    arr = np.asarray(values)
    if arr.dtype == np.float16:
        return arr.view(np.uint16)
    if arr.dtype.kind in "ui":
        if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
            raise ValueError("FP16 bit patterns must be in [0, 0xFFFF]")
        return arr.astype(np.uint16)
    raise TypeError(f"expected FP16 bit patterns (uint16) or float16 values, not dtype {arr.dtype}")


def decode(bits) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sign, M, e_eff, finite): |v| = M * 2**(e_eff - 25) for finite v; M = 0 for non-finite."""
    b = as_bits(bits).astype(np.int64)
    sign = (b >> SIGN_SHIFT) & 1
    e = (b >> EXP_SHIFT) & EXP_FIELD_MAX
    f = b & FRAC_MASK
    finite = e != EXP_FIELD_MAX
    M = np.where(e > 0, f | HIDDEN_BIT, f)
    M = np.where(finite, M, 0)
    e_eff = np.maximum(e, 1)
    return sign, M, e_eff, finite


def _bitlen(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    out = np.zeros(v.shape, dtype=np.int64)
    nz = v > 0
    out[nz] = np.floor(np.log2(v[nz])).astype(np.int64) + 1
    # log2 of integers < 2**53 is exact enough at powers of two; fix any off-by-one from rounding anyway.
    out[nz] += (v[nz] >> out[nz]) > 0
    out[nz] -= (v[nz] >> (out[nz] - 1)) == 0
    return out


def element_exponent(bits) -> np.ndarray:
    """E(v) = bitlen(M) + e_eff - 25, the smallest E with |v| < 2**E (zero gives -24); non-finite: EXP_MIN."""
    _, M, e_eff, finite = decode(bits)
    return np.where(finite, _bitlen(M) + e_eff - EXP_OFFSET, EXP_MIN)


def vector_exponent(bits) -> int:
    """Shared exponent of a vector: max of element exponents over finite elements, EXP_MIN if none."""
    b = as_bits(bits)
    if b.size == 0:
        raise ValueError("cannot take the exponent of an empty vector")
    return int(element_exponent(b).max())


def to_magnitudes(bits, E: int, q: int):
    """(a, sign, nonfinite, saturated) for shared exponent E: a = min(floor(|v| * 2**(q - E)), 2**q - 1)."""
    sign, M, e_eff, finite = decode(bits)
    sh = e_eff - EXP_OFFSET + q - int(E)
    # Any nonzero M shifted left by q + 1 or more already exceeds 2**q - 1, so capping the left shift there
    # changes nothing after the clamp and keeps int64 from overflowing.
    left = np.clip(sh, 0, q + 1)
    right = np.clip(-sh, 0, 62)
    a = np.where(sh >= 0, M << left, M >> right)
    limit = (1 << q) - 1
    saturated = a > limit
    a = np.minimum(a, limit)
    return a.astype(np.int64), sign.astype(np.int64), ~finite, saturated


def count_to_fp16(counts, e_out) -> np.ndarray:
    """IEEE binary16 of count * 2**e_out, round to nearest even (spec §7). No floating point used."""
    c = np.asarray(counts, dtype=np.int64)
    e_out = np.broadcast_to(np.asarray(e_out, dtype=np.int64), c.shape)
    sign = (c < 0).astype(np.int64)
    mag = np.abs(c)
    out = np.zeros(c.shape, dtype=np.int64)
    nz = mag > 0
    p = _bitlen(mag) - 1                         # leading-one position
    e = p + e_out                                 # unbiased exponent of the value
    # Significand in units of 2**(e_unit): normals keep 11 bits (unit 2**(e-10)), subnormals unit 2**-24.
    unit = np.where(e >= MIN_NORMAL_EXP, e - FRAC_WIDTH, SUBNORMAL_EXP)
    shift = unit - e_out                          # right shift of mag to that unit (negative: left)
    rsh = np.clip(shift, 0, 63)
    lsh = np.clip(-shift, 0, 63)
    kept = np.where(shift > 0, mag >> rsh, mag << lsh)
    rem_mask = np.where(shift > 0, (np.int64(1) << np.minimum(rsh, 62)) - 1, 0)
    rem = np.where(shift > 63, mag, mag & rem_mask)
    half = np.where(shift > 0, np.int64(1) << np.clip(rsh - 1, 0, 62), 0)
    kept = np.where(shift > 63, 0, kept)
    round_up = (shift > 0) & ((rem > half) | ((rem == half) & ((kept & 1) == 1))) & (shift <= 63)
    # rem == half when shift > 63 cannot happen (mag < 2**63 < half would need shift 64).
    sig = kept + round_up
    # Normal: sig in [1024, 2048]; 2048 means the rounding carried into the next binade.
    normal = e >= MIN_NORMAL_EXP
    carry = normal & (sig == 2 * HIDDEN_BIT)
    e_n = np.where(carry, e + 1, e)
    sig_n = np.where(carry, HIDDEN_BIT, sig)
    normal_bits = ((e_n + BIAS) << EXP_SHIFT) | (sig_n - HIDDEN_BIT)
    overflow = normal & (e_n + BIAS >= EXP_FIELD_MAX)
    # Subnormal: sig in [0, 1024]; 1024 is exactly the smallest normal's pattern, 0 a signed zero.
    sub_bits = sig
    mag_bits = np.where(normal, normal_bits, sub_bits)
    mag_bits = np.where(overflow, INF16, mag_bits)
    out = np.where(nz, (sign << SIGN_SHIFT) | mag_bits, 0)
    return out.astype(np.uint16)

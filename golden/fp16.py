"""FP16 blocks of the golden model: decode, shared exponent, magnitude shift, count-to-FP16 (spec §1-3, §7).

Plain integer NumPy, written from docs/spec.md alone. Arrays of uint16 bit patterns in, integers out.
"""
from __future__ import annotations

import numpy as np

from essop.config import EXP_MIN

NAN16 = 0x7E00
INF16 = 0x7C00
SIGN16 = 0x8000


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
    sign = (b >> 15) & 1
    e = (b >> 10) & 0x1F
    f = b & 0x3FF
    finite = e != 31
    M = np.where(e > 0, f | 0x400, f)
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
    return np.where(finite, _bitlen(M) + e_eff - 25, EXP_MIN)


def vector_exponent(bits) -> int:
    """Shared exponent of a vector: max of element exponents over finite elements, EXP_MIN if none."""
    b = as_bits(bits)
    if b.size == 0:
        raise ValueError("cannot take the exponent of an empty vector")
    return int(element_exponent(b).max())


def to_magnitudes(bits, E: int, q: int):
    """(a, sign, nonfinite, saturated) for shared exponent E: a = min(floor(|v| * 2**(q - E)), 2**q - 1)."""
    sign, M, e_eff, finite = decode(bits)
    sh = e_eff - 25 + q - int(E)
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
    unit = np.where(e >= -14, e - 10, -24)
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
    normal = e >= -14
    carry = normal & (sig == 2048)
    e_n = np.where(carry, e + 1, e)
    sig_n = np.where(carry, 1024, sig)
    normal_bits = ((e_n + 15) << 10) | (sig_n - 1024)
    overflow = normal & (e_n + 15 >= 31)
    # Subnormal: sig in [0, 1024]; 1024 is exactly the smallest normal's pattern, 0 a signed zero.
    sub_bits = sig
    mag_bits = np.where(normal, normal_bits, sub_bits)
    mag_bits = np.where(overflow, INF16, mag_bits)
    out = np.where(nz, (sign << 15) | mag_bits, 0)
    return out.astype(np.uint16)

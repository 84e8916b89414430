"""FP16 patterns and q-bit magnitudes as PyTorch tensors (spec sections 1-3), for whole maps and pairs.

The training layers cast x * 2**s and delta * 2**s to FP16 (`fp16_patterns`, or the native fused pass
`prepare_map`), take the exponents of pairs from their largest patterns (`element_exponents`) and the
magnitudes from the patterns (`magnitudes`: the integer barrel shifter; `float_magnitudes`: the same numbers by
exact FP32 arithmetic). tests/training/test_training_kernel.py checks both against the golden model over all
65,536 patterns.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from essop.fp16_format import (EXP_FIELD_MAX, EXP_MASK, EXP_OFFSET, EXP_SHIFT, FRAC_MASK, HIDDEN_BIT, MAGNITUDE_MASK,
                               SIGN_SHIFT, SUBNORMAL_EXP)

_PATTERNS = (1 << 16) - 1           # every FP16 pattern as an unsigned 16-bit integer


def as_bits(v: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """FP16 bit patterns as an int32 tensor in [0, 0xFFFF]: from float16 tensors/arrays or uint16/int bits."""
    if isinstance(v, np.ndarray):
        if v.dtype == np.float16:
            v = v.view(np.uint16)
        if v.dtype.kind not in "ui":
            raise TypeError(f"expected FP16 bit patterns or float16 values, not dtype {v.dtype}")
        v = torch.from_numpy(v.astype(np.int32))
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"expected a tensor or array of FP16 values, not {type(v).__name__}")
    if v.dtype == torch.float16:
        v = v.view(torch.int16).to(torch.int32) & _PATTERNS
    elif v.dtype in (torch.int16, torch.uint16):
        v = v.view(torch.int16).to(torch.int32) & _PATTERNS
    elif v.dtype in (torch.int32, torch.int64, torch.uint8):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) > _PATTERNS):
            raise ValueError("FP16 bit patterns must be in [0, 0xFFFF]")
        v = v.to(torch.int32)
    else:
        raise TypeError(f"expected FP16 bit patterns or float16 values, not dtype {v.dtype}")
    return v if device is None else v.to(device)


def fp16_patterns(v: torch.Tensor, s: int = 0) -> torch.Tensor:
    """int16 FP16 patterns of v * 2**s (v finite FP32; the product is exact, the cast rounds to nearest even
    as the array's FP16 input would). 2**s is applied as two power-of-two factors inside FP32's range; a
    product that underflows on the way is far below FP16's smallest subnormal either way."""
    s1 = max(-100, min(100, int(s)))
    return (v * 2.0 ** s1 * 2.0 ** (int(s) - s1)).to(torch.float16).view(torch.int16)


def absmax(t: torch.Tensor, backend: str = "torch") -> torch.Tensor:
    """max |t| as a float32 scalar tensor on t's device (NaN propagates; Inf stays Inf)."""
    if backend.startswith("native") and t.numel():
        from essop.training import native
        return torch.tensor(native.absmax(t, variant="scalar" if backend == "native-scalar" else native.ACTIVE))
    if t.numel() == 0:
        return torch.zeros((), dtype=torch.float32, device=t.device)
    return t.detach().abs().amax().to(torch.float32)


def prepare_map(t: torch.Tensor, s: int, ph: int = 0, pw: int = 0, backend: str = "torch"):
    """(FP16 patterns of t * 2**s zero-padded by (ph, pw), [B, C, Hp, Wp] int16 in t's memory format or
    NCHW; the largest |pattern| over the channels of every padded pixel, [B, Hp, Wp] int16) for a finite
    FP32 map t [B, C, H, W]: one fused pass with the native backend, the same values from PyTorch otherwise.
    Element (b, c, y, x) of the map sits at the map's strides, whatever its memory format."""
    if backend.startswith("native"):
        from essop.training import native
        return native.prepare(t, s, ph, pw, variant="scalar" if backend == "native-scalar" else native.ACTIVE)
    h = fp16_patterns(t, s)
    padded = torch.nn.functional.pad(h, (pw, pw, ph, ph)) if ph or pw else h
    return padded, (padded & MAGNITUDE_MASK).amax(1)


def magnitude_patterns(bits16: torch.Tensor) -> torch.Tensor:
    """|v| as FP16 patterns (int32) with non-finite elements as 0: ordered like the magnitudes they give."""
    b = bits16.to(torch.int32) & MAGNITUDE_MASK
    return torch.where(b >= EXP_MASK, torch.zeros_like(b), b)


def element_exponents(bits: torch.Tensor) -> torch.Tensor:
    """E(v) = bitlen(M) + e_eff - 25 per element (spec section 2); non-finite elements give EXP_MIN (-24),
    which never raises a max because zero has it too."""
    bits = bits.to(torch.int32) & _PATTERNS
    e = (bits >> EXP_SHIFT) & EXP_FIELD_MAX
    f = bits & FRAC_MASK
    M = torch.where(e > 0, f | HIDDEN_BIT, f)
    # bitlen(M) for M < 2**11: exact through float32 log2 of an integer below 2**24.
    bitlen = torch.where(M > 0, torch.floor(torch.log2(M.to(torch.float32))).to(torch.int32) + 1,
                         torch.zeros_like(M))
    E = bitlen + torch.clamp(e, min=1) - EXP_OFFSET
    return torch.where(e == EXP_FIELD_MAX, torch.full_like(E, SUBNORMAL_EXP), E)


def magnitudes(bits: torch.Tensor, E: int | torch.Tensor, q: int):
    """(a, negative, nonfinite, saturated) for exponent E (an int, or a tensor broadcasting against bits;
    spec section 3): a = min(floor(|v| * 2**(q - E)), 2**q - 1) as int32, negative as bool (sign bit)."""
    bits = bits.to(torch.int32) & _PATTERNS
    e = (bits >> EXP_SHIFT) & EXP_FIELD_MAX
    f = bits & FRAC_MASK
    finite = e != EXP_FIELD_MAX
    M = torch.where(e > 0, f | HIDDEN_BIT, f)
    M = torch.where(finite, M, torch.zeros_like(M))
    E = E.to(torch.int32) if isinstance(E, torch.Tensor) else int(E)
    sh = torch.clamp(e, min=1) - EXP_OFFSET + q - E
    # A nonzero M shifted left by q + 1 already exceeds 2**q - 1, and M < 2**11 vanishes after >= 11 right
    # shifts, so both shift amounts are capped without changing any result.
    a = torch.where(sh >= 0, M << torch.clamp(sh, 0, q + 1), M >> torch.clamp(-sh, 0, 15))
    limit = (1 << q) - 1
    saturated = a > limit
    a = torch.clamp(a, max=limit)
    return a, (bits >> SIGN_SHIFT) == 1, ~finite, saturated


def signed_magnitudes(bits: torch.Tensor, E: int | torch.Tensor, q: int) -> torch.Tensor:
    """+-a (int32) from FP16 bit patterns by the integer barrel-shifter path of spec section 3."""
    a, neg, _, _ = magnitudes(bits, E, q)
    return torch.where(neg, -a, a)


def float_magnitudes(values: torch.Tensor, E: torch.Tensor, q: int) -> torch.Tensor:
    """+-a (float32) of FP16 values given as FP32 (exact): |v| * 2**(q - E) is exact in FP32 for every FP16
    v and E in [-32, 31], and truncation towards zero is the floor of the magnitude with the sign kept.
    Equal to `signed_magnitudes` of the same patterns (tests/training/test_training_kernel.py)."""
    lim = float((1 << q) - 1)
    scale = torch.ldexp(torch.ones_like(E, dtype=torch.float32), (q - E).to(torch.float32))
    return (values * scale).trunc_().clamp_(-lim, lim)

"""Counts of a whole layer's ESSOP update, bit-exact with the golden model, on CPU and CUDA.

The unit of work is a *segment*: pairs whose counts add as integers because they share the exponent sum
E_x + E_d (one segment for block scaling; one per distinct exponent sum for per_pair and per_sample scaling,
docs/training.md). `segment_counts(cfg, x, d, order, seg, start_pair)` returns, for every segment s,

    C_s[i, j] = sum over pairs p of segment s and cycles t of sign * D_i(p, t) * X_j(p, t)

(docs/spec.md sections 2-5), where pair p uses the random numbers of cycles (start_pair + p) * BL .. + BL - 1
(run-on) or 0 .. BL - 1 (restart) of the configured source, as tabulated by random_tables from
essop.golden.random_sources (LFSR or Sobol; per-element offsets or XOR words; per-pair shift words). Each side is a `Pairs`: the FP16 patterns of a map read through one base address per
pair and one offset per element (an im2col that is never built), the exponent of every pair and the pattern
of its largest magnitude. `essop_counts` is the one-group form the golden model's tests use.

Backends (tests/training/test_training_kernel*.py check each against the golden model, integer for integer):
- "native" (CPU default): training/native/essop_counts.cpp, bitstreams packed 64 lanes to a word and
  contracted with AND + popcount; AVX-512 where the CPU has it ("native-scalar" is the portable build).
- "torch" (CUDA, and CPU when no compiler is found): int8 bitstreams of the (pair, cycle) rows that can count,
  contracted by an integer GEMM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from essop.config import EXP_PORT_MAX, EXP_PORT_MIN, EssopConfig
from essop.training.fp16_tensors import as_bits, magnitude_patterns, magnitudes, signed_magnitudes
from essop.training.random_tables import (base_table, check_table_width, cycle_table, generator_offsets,
                                          generator_words, pair_words)

__all__ = [
    "segment_counts", "essop_counts", "Pairs", "resolve_backend", "native_supports", "exact_products", "BACKENDS"
]

BACKENDS = ("auto", "native", "native-scalar", "torch")
#: Rows (pair-cycles) of one chunk of the torch backend: bounds its int8 bitstream tensors to about this many
#: x n bytes. On CUDA chunks are larger: there the cost is per launched operation rather than per byte.
DEFAULT_CHUNK_ROWS = 1 << 19
CUDA_CHUNK_ROWS = 1 << 23
_FP32_EXACT_K = 1 << 24



# ---- the pairs of one side -------------------------------------------------------------------------------
@dataclass
class Pairs:
    """One side (x or delta) of a group of vector pairs, as the kernels read it.

    map16: int16 FP16 patterns, flat; element k of pair p is map16[base[p] + off[k]] (zero padding included
    in the map, so every such index is valid). exp: int32 [P], the exponent each pair is scaled by.
    vmax16: int16 [P], the FP16 pattern of each pair's largest finite |element| (0 for none)."""
    map16: torch.Tensor
    base: torch.Tensor
    off: torch.Tensor
    exp: torch.Tensor
    vmax16: torch.Tensor

    @property
    def length(self) -> int:
        return self.off.numel()

    @classmethod
    def from_rows(cls, bits16: torch.Tensor, exp: torch.Tensor) -> "Pairs":
        """Pairs stored as rows of a [P, len] tensor of FP16 patterns."""
        P, n = bits16.shape
        dev = bits16.device
        return cls(bits16.reshape(-1).contiguous(), torch.arange(P, device=dev) * n, torch.arange(n, device=dev),
                   exp.to(torch.int32), magnitude_patterns(bits16).amax(1).to(torch.int16) if n else
                   torch.zeros(P, dtype=torch.int16, device=dev))

    def rows(self, pairs: torch.Tensor) -> torch.Tensor:
        """FP16 patterns [K, len] (int32) of the listed pairs."""
        idx = self.base[pairs][:, None] + self.off[None, :]
        return self.map16[idx].to(torch.int32) & 0xFFFF


def _check_exp(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if not EXP_PORT_MIN <= v <= EXP_PORT_MAX:
        raise ValueError(f"{name} must be in [{EXP_PORT_MIN}, {EXP_PORT_MAX}], not {v!r}")
    return int(v)


# ---- backends --------------------------------------------------------------------------------------------
def native_supports(cfg: EssopConfig) -> bool:
    """The native kernel reads per_element generators as offsets into one cycle table (LFSR: that needs
    gcd(steps_per_cycle, 2**w - 1) = 1, which EssopConfig guarantees) or as XOR words (Sobol): every valid
    configuration."""
    return isinstance(cfg, EssopConfig)


def resolve_backend(backend: str, device: torch.device, cfg: EssopConfig) -> str:
    """The backend that will run: 'auto' is 'native' on CPU when it builds and covers cfg, else 'torch'."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}")
    native_ok = device.type == "cpu" and native_supports(cfg)
    if backend == "auto":
        if not native_ok:
            return "torch"
        from essop.training import native
        return "native" if native.available("simd")[0] else "torch"
    if backend.startswith("native") and not native_ok:
        raise ValueError(f"the native kernel runs on the CPU, not {device.type}")
    return backend


def segment_counts(cfg: EssopConfig, x: Pairs, d: Pairs, order: torch.Tensor, seg: torch.Tensor,
                   start_pair: int, backend: str = "auto", chunk_rows: int | None = None,
                   expected: bool = False) -> torch.Tensor:
    """int64 [segments, m, n]: the counts of every segment (order[seg[s]:seg[s+1]] lists its pairs); with
    `expected`, sum_p (+-b_pi)(+-a_pj) over each segment's pairs instead (BL * 2**-2q times the counts'
    expectation: the expected mode)."""
    check_table_width(cfg)
    device = x.map16.device
    backend = resolve_backend(backend, device, cfg)
    if backend.startswith("native"):
        from essop.training import native
        variant = "scalar" if backend == "native-scalar" else native.ACTIVE
        n, m = x.length, d.length
        lcfg = cfg.replace(rows=m, cols=n)       # the generators of an array of this side's lengths
        gx = gd = wx = wd = None
        if cfg.sharing == "per_element":
            gx, gd = generator_offsets(lcfg, "x"), generator_offsets(lcfg, "d")
            wx, wd = generator_words(lcfg, "x"), generator_words(lcfg, "d")
        P = x.base.numel()
        px, pd = pair_words(cfg, "x", start_pair, P), pair_words(cfg, "d", start_pair, P)
        tx, td = cycle_table(cfg, "x"), cycle_table(cfg, "d")
        # A chunk's bit words stay in the per-core cache: about 256 KiB of X and D words per thread.
        words_per_pair = max(cfg.bl, 64) / 64 if cfg.sharing == "per_element" else cfg.bl / 64
        chunk = int(max(16, min(1024, (1 << 18) / (8 * max(words_per_pair, 1 / 64) * (2 * n + 2 * m)))))
        return native.segment_counts(
            native.Side(x.map16, x.base, x.off, x.exp, x.vmax16, gx, tx, wx, px),
            native.Side(d.map16, d.base, d.off, d.exp, d.vmax16, gd, td, wd, pd),
            order, seg, start_pair, cfg.rng_period, cfg.bl, cfg.q, cfg.lfsr_restart,
            chunk_pairs=4096 if expected else chunk, variant=variant, expected=expected)
    if expected:
        return _segment_products_torch(cfg, x, d, order, seg)
    return _segment_counts_torch(cfg, x, d, order, seg, start_pair, chunk_rows)


def exact_products(q: int, sb: torch.Tensor, sa: torch.Tensor) -> torch.Tensor:
    """int64 sb.T @ sa for integer tensors with |values| <= 2**q - 1, exactly: GEMMs over blocks of pairs
    short enough that every partial sum stays below 2**24 (FP32) or 2**53 (FP64, q > 10)."""
    m, n = sb.shape[1], sa.shape[1]
    K = sa.shape[0]
    lim = ((1 << q) - 1) ** 2
    if K == 0:
        return torch.zeros(m, n, dtype=torch.int64, device=sa.device)
    block, dt = (1 << 24) // lim, torch.float32
    if block < 16:
        block, dt = (1 << 53) // lim, torch.float64
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False   # TF32 would round the sums: never allowed here
    try:
        if K <= block:
            return (sb.to(dt).t() @ sa.to(dt)).to(torch.int64)
        pad = (-K) % block
        a = torch.nn.functional.pad(sa.to(dt), (0, 0, 0, pad))
        b = torch.nn.functional.pad(sb.to(dt), (0, 0, 0, pad))
        nb = a.shape[0] // block
        return torch.bmm(b.view(nb, block, m).transpose(1, 2), a.view(nb, block, n)).to(torch.int64).sum(0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def _segment_products_torch(cfg, x: Pairs, d: Pairs, order, seg, chunk_pairs: int = 8192):
    bounds = seg.tolist()
    out = torch.zeros(len(bounds) - 1, d.length, x.length, dtype=torch.int64, device=x.map16.device)
    for s in range(len(bounds) - 1):
        pairs_s = order[bounds[s]:bounds[s + 1]]
        for c0 in range(0, pairs_s.numel(), chunk_pairs):
            pc = pairs_s[c0:c0 + chunk_pairs]
            sa = signed_magnitudes(x.rows(pc), x.exp[pc, None], cfg.q)
            sb = signed_magnitudes(d.rows(pc), d.exp[pc, None], cfg.q)
            out[s] += exact_products(cfg.q, sb, sa)
    return out


def _gemm(dt: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """dt [m, K] int8 @ xs [K, n] int8 -> int64 [m, n], exactly."""
    m, K = dt.shape
    n = xs.shape[1]
    if K == 0:
        return torch.zeros(m, n, dtype=torch.int64, device=dt.device)
    if dt.device.type == "cpu":
        # torch._int_mm needs row strides > 1 (a [1, K] operand with strides (1, 1) gives wrong results).
        if m == 1 or n == 1:
            return (dt.to(torch.int64) @ xs.to(torch.int64))
        return torch._int_mm(dt.contiguous(), xs.contiguous()).to(torch.int64)
    if m > 16 and K % 8 == 0 and n % 8 == 0 and K >= 16:
        return torch._int_mm(dt.contiguous(), xs.contiguous()).to(torch.int64)
    if K >= _FP32_EXACT_K:
        raise AssertionError("chunk too large for an exact fp32 GEMM")
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False   # TF32 would round the +-1 sums: never allowed here
    try:
        return (dt.to(torch.float32) @ xs.to(torch.float32)).to(torch.int64)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def _stream(R: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """int8 bitstream rows: +1 where R < s (positive magnitude s), -1 where R < -s (negative), else 0."""
    return torch.lt(R, s).to(torch.int8) - torch.lt(R, -s).to(torch.int8)


def _segment_counts_torch(cfg, x: Pairs, d: Pairs, order, seg, start_pair, chunk_rows=None):
    device = x.map16.device
    if chunk_rows is None:
        chunk_rows = CUDA_CHUNK_ROWS if device.type == "cuda" else DEFAULT_CHUNK_ROWS
    BL, q = cfg.bl, cfg.q
    period = cfg.rng_period
    n, m = x.length, d.length
    tx, td = base_table(cfg, "x", device), base_table(cfg, "d", device)
    P = x.base.numel()
    px, pd = pair_words(cfg, "x", start_pair, P, device), pair_words(cfg, "d", start_pair, P, device)
    cyc = torch.arange(BL, dtype=torch.int64, device=device)
    seg_list = seg.tolist()
    out = torch.zeros(len(seg_list) - 1, m, n, dtype=torch.int64, device=device)
    per_element = cfg.sharing == "per_element"
    if per_element:
        lcfg = cfg.replace(rows=m, cols=n)
        ox, od = generator_offsets(lcfg, "x", device), generator_offsets(lcfg, "d", device)
        zero = torch.zeros((), dtype=torch.int64, device=device)
        wx, wd = generator_words(lcfg, "x", device), generator_words(lcfg, "d", device)
        wx = zero if wx is None else wx
        wd = zero if wd is None else wd
        step = max(1, chunk_rows // (BL * max(8, n, m) // 8))
    else:
        step = max(1, chunk_rows // BL)
    for s in range(len(seg_list) - 1):
        pairs_s = order[seg_list[s]:seg_list[s + 1]]
        for c0 in range(0, pairs_s.numel(), step):
            pc = pairs_s[c0:c0 + step]
            # Cycle index of every (pair, cycle) into the base tables, and the pairs' XOR words.
            t = cyc.expand(pc.numel(), BL) if cfg.lfsr_restart else (start_pair + pc)[:, None] * BL + cyc
            pos = t % period
            sx = 0 if px is None else px[pc][:, None]                             # [K, 1]
            sd = 0 if pd is None else pd[pc][:, None]
            ex, ed = x.exp[pc], d.exp[pc]
            if per_element:
                sa = signed_magnitudes(x.rows(pc), ex[:, None], q)              # [K, n]
                sb = signed_magnitudes(d.rows(pc), ed[:, None], q)
                Rx = tx[(pos[:, :, None] + ox) % period] ^ wx ^ (sx if px is None else sx[:, :, None])
                Rd = td[(pos[:, :, None] + od) % period] ^ wd ^ (sd if pd is None else sd[:, :, None])
                X = _stream(Rx, sa[:, None, :]).reshape(-1, n)
                D = _stream(Rd, sb[:, None, :]).reshape(-1, m)
            else:
                amax = magnitudes(x.vmax16[pc], ex, q)[0]
                bmax = magnitudes(d.vmax16[pc], ed, q)[0]
                Rx, Rd = tx[pos] ^ sx, td[pos] ^ sd                                # [K, BL]
                keep = (Rx < amax[:, None]) & (Rd < bmax[:, None])
                pi, ci = keep.nonzero(as_tuple=True)
                if pi.numel() == 0:
                    continue
                sa = signed_magnitudes(x.rows(pc[pi]), ex[pi, None], q)
                sb = signed_magnitudes(d.rows(pc[pi]), ed[pi, None], q)
                X = _stream(Rx[pi, ci][:, None], sa)
                D = _stream(Rd[pi, ci][:, None], sb)
            out[s] += _gemm(D.t(), X)
    return out


# ---- one accumulation group ------------------------------------------------------------------------------
def essop_counts(x: Any, d: Any, exp_x: int, exp_d: int, start_pair: int, cfg: EssopConfig,
                 device: torch.device | str | None = None, backend: str = "auto",
                 chunk_rows: int | None = None) -> torch.Tensor:
    """Counts int64 [m, n] of one accumulation group with block exponents, identical to the golden model's.

    x: FP16 [P, n] (float16 tensor/array or uint16 bit patterns), d: FP16 [P, m]; exp_x, exp_d: the group's
    block exponents; start_pair: pairs processed since reset before this group (ignored with lfsr_restart).
    Non-finite inputs count as magnitude 0 (the array's counts do the same; poisoning is an output matter)."""
    if not isinstance(cfg, EssopConfig):
        raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
    ex, ed = _check_exp("exp_x", exp_x), _check_exp("exp_d", exp_d)
    if isinstance(start_pair, bool) or not isinstance(start_pair, (int, np.integer)) or start_pair < 0:
        raise ValueError(f"start_pair must be a non-negative int, not {start_pair!r}")
    xb = as_bits(x, device)
    db = as_bits(d, device if device is not None else xb.device)
    if xb.ndim != 2 or db.ndim != 2:
        raise ValueError(f"x and d must be 2-D [pairs, length], not shapes {tuple(xb.shape)} and {tuple(db.shape)}")
    if xb.shape[0] != db.shape[0] or xb.shape[0] == 0:
        raise ValueError(f"x and d must hold the same nonzero number of pairs, not {xb.shape[0]} and {db.shape[0]}")
    if xb.shape[1] != cfg.cols or db.shape[1] != cfg.rows:
        raise ValueError(f"x must have cols={cfg.cols} and d rows={cfg.rows} elements, "
                         f"not {xb.shape[1]} and {db.shape[1]}")
    if xb.shape[0] > cfg.acc_depth:
        raise ValueError(f"a group holds at most acc_depth={cfg.acc_depth} pairs, not {xb.shape[0]}")
    P = xb.shape[0]
    dev = xb.device
    xs = Pairs.from_rows(xb.to(torch.int16), torch.full((P,), ex, dtype=torch.int32, device=dev))
    ds = Pairs.from_rows(db.to(torch.int16), torch.full((P,), ed, dtype=torch.int32, device=dev))
    order = torch.arange(P, dtype=torch.int64, device=dev)
    seg = torch.tensor([0, P], dtype=torch.int64, device=dev)
    return segment_counts(cfg, xs, ds, order, seg, int(start_pair), backend, chunk_rows)[0]

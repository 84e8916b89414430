"""Fast PyTorch counts of a whole layer's ESSOP update: the same integers as the golden model.

`essop_counts(x, d, exp_x, exp_d, start_pair, cfg)` returns C[m, n] = sum over pairs p and cycles t of
sign-weighted D_i(p, t) * X_j(p, t) (docs/spec.md sections 3-5) for one accumulation group of P pairs whose
first pair is pair number `start_pair` since reset (the LFSR run-on position). It is bit-exact with
`essop.golden.array.counts_reference` and `EssopArrayModel.process_group` (tests/training/test_kernel.py).

How it is fast:
- Random numbers are read from a table of the LFSR's low q state bits over its whole period (one single
  shift apart), built once per (taps, seed): the state of cycle t of generator g is entry
  (g * phase_stride + S * t) mod (2**w - 1). Widths above 24 would need a table of more than 2**24 entries
  and are refused.
- Bitstreams are {-1, 0, 1} int8 and the contraction over K = P * BL (pairs x cycles) is one GEMM per chunk
  of pairs: `torch._int_mm` (int8 -> int32, AMX/VNNI on CPU) where it applies, else an fp32 matmul that is
  exact while a chunk's K < 2**24 (TF32 is switched off for it on CUDA). Chunk results add up in int64.
- (pair, cycle) rows whose delta bitstream or x bitstream is all zero add nothing and are dropped before the
  big tensors are built. In shared mode this is known from the pair's largest magnitudes alone
  (D(t) is all zero iff R_d(t) >= max_i b_i), which with block exponents removes most rows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from essop import lfsr_params
from essop.config import EXP_PORT_MAX, EXP_PORT_MIN, EssopConfig

#: Largest LFSR width whose full-period table the kernel builds (2**24 - 1 entries).
MAX_TABLE_WIDTH = 24
#: Rows (pair-cycles) of one chunk: bounds the int8 bitstream tensors to about this many x n bytes. On CUDA
#: chunks are larger: there the cost is per launched operation rather than per byte.
DEFAULT_CHUNK_ROWS = 1 << 19
CUDA_CHUNK_ROWS = 1 << 23
_FP32_EXACT_K = 1 << 24

_tables: dict[tuple, torch.Tensor] = {}


def _lfsr_table_np(taps: tuple[int, ...], width: int, seed: int) -> np.ndarray:
    """State k (k single shifts after `seed`) for k = 0 .. 2**w - 2, as int64, computed by running many
    lanes in parallel, each lane started by GF(2) jump-ahead at a multiple of the segment length."""
    period = (1 << width) - 1
    lanes = max(1, min(4096, period // 64))
    seg = -(-period // lanes)
    starts = np.array(lfsr_params.seeds(tuple(taps), width, seed, lanes, seg), dtype=np.int64)
    mask = np.int64(period)
    out = np.empty((seg, lanes), dtype=np.int64)
    s = starts
    for k in range(seg):
        out[k] = s
        fb = np.zeros_like(s)
        for t in taps:
            fb ^= (s >> (t - 1)) & 1
        s = ((s << 1) | fb) & mask
    return out.T.reshape(-1)[:period]


def lfsr_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Low q bits of every state of one side's m-sequence, from that side's base seed (int32 [2**w - 1])."""
    if side not in ("x", "d"):
        raise ValueError(f"side must be 'x' or 'd', not {side!r}")
    if cfg.lfsr_width > MAX_TABLE_WIDTH:
        raise ValueError(f"the training kernel tabulates LFSRs of width <= {MAX_TABLE_WIDTH}, "
                         f"not lfsr_width={cfg.lfsr_width!r}")
    taps = cfg.lfsr_taps_x if side == "x" else cfg.lfsr_taps_d
    seed = cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d
    device = torch.device(device)
    key = (tuple(taps), cfg.lfsr_width, seed, cfg.q, str(device))
    table = _tables.get(key)
    if table is None:
        cpu_key = key[:-1] + ("cpu",)
        table = _tables.get(cpu_key)
        if table is None:
            states = _lfsr_table_np(tuple(taps), cfg.lfsr_width, seed)
            table = torch.from_numpy((states & ((1 << cfg.q) - 1)).astype(np.int32))
            _tables[cpu_key] = table
        table = table.to(device)
        _tables[key] = table
    return table


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
        v = v.view(torch.int16).to(torch.int32) & 0xFFFF
    elif v.dtype in (torch.int16, torch.uint16):
        v = v.view(torch.int16).to(torch.int32) & 0xFFFF
    elif v.dtype in (torch.int32, torch.int64, torch.uint8):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) > 0xFFFF):
            raise ValueError("FP16 bit patterns must be in [0, 0xFFFF]")
        v = v.to(torch.int32)
    else:
        raise TypeError(f"expected FP16 bit patterns or float16 values, not dtype {v.dtype}")
    return v if device is None else v.to(device)


def element_exponents(bits: torch.Tensor) -> torch.Tensor:
    """E(v) = bitlen(M) + e_eff - 25 per element (spec section 2); non-finite elements give EXP_MIN (-24),
    which never raises a max because zero has it too."""
    e = (bits >> 10) & 0x1F
    f = bits & 0x3FF
    M = torch.where(e > 0, f | 0x400, f)
    # bitlen(M) for M < 2**11: exact through float32 frexp-free log2 of a power-of-two-safe integer.
    bitlen = torch.where(M > 0, torch.floor(torch.log2(M.to(torch.float32))).to(torch.int32) + 1,
                         torch.zeros_like(M))
    E = bitlen + torch.clamp(e, min=1) - 25
    return torch.where(e == 31, torch.full_like(E, -24), E)


def magnitudes(bits: torch.Tensor, E: int, q: int):
    """(a, negative, nonfinite, saturated) for block exponent E (spec section 3): a = min(floor(|v| *
    2**(q - E)), 2**q - 1) as int32, negative as bool (sign bit, ignored where a = 0)."""
    e = (bits >> 10) & 0x1F
    f = bits & 0x3FF
    finite = e != 31
    M = torch.where(e > 0, f | 0x400, f)
    M = torch.where(finite, M, torch.zeros_like(M))
    sh = torch.clamp(e, min=1) - 25 + q - int(E)
    # A nonzero M shifted left by q + 1 already exceeds 2**q - 1, and M < 2**11 vanishes after >= 11 right
    # shifts, so both shift amounts are capped without changing any result.
    a = torch.where(sh >= 0, M << torch.clamp(sh, 0, q + 1), M >> torch.clamp(-sh, 0, 15))
    limit = (1 << q) - 1
    saturated = a > limit
    a = torch.clamp(a, max=limit)
    return a, (bits >> 15) == 1, ~finite, saturated


def _check_exp(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if not EXP_PORT_MIN <= v <= EXP_PORT_MAX:
        raise ValueError(f"{name} must be in [{EXP_PORT_MIN}, {EXP_PORT_MAX}], not {v!r}")
    return int(v)


def _gemm(dt: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """dt [m, K] int8 @ xs [K, n] int8 -> int64 [m, n], exactly."""
    m, K = dt.shape
    n = xs.shape[1]
    if K == 0:
        return torch.zeros(m, n, dtype=torch.int64, device=dt.device)
    if dt.device.type == "cpu":
        return torch._int_mm(dt, xs).to(torch.int64)
    if m > 16 and K % 8 == 0 and n % 8 == 0 and K >= 16:
        return torch._int_mm(dt, xs).to(torch.int64)
    if K >= _FP32_EXACT_K:
        raise AssertionError("chunk too large for an exact fp32 GEMM")
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False   # TF32 would round the +-1 sums: never allowed here
    try:
        return (dt.to(torch.float32) @ xs.to(torch.float32)).to(torch.int64)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def _pad8(t: torch.Tensor, dim: int) -> torch.Tensor:
    k = t.shape[dim]
    pad = (-k) % 8
    if pad == 0 or t.device.type == "cpu":
        return t
    shape = list(t.shape)
    shape[dim] = pad
    return torch.cat([t, torch.zeros(shape, dtype=t.dtype, device=t.device)], dim=dim)


def _stream(R: torch.Tensor, s: torch.Tensor, signed: bool) -> torch.Tensor:
    """int8 bitstream rows: +1 where R < s (positive magnitude s), -1 where R < -s (negative), else 0.
    R and s hold small integers (R >= 0) in one dtype, so the comparisons are exact."""
    pos = torch.lt(R, s)
    if not signed:
        return pos.view(torch.int8)
    return pos.view(torch.int8) - torch.lt(R, -s).view(torch.int8)


def _positions(cfg: EssopConfig, pairs: torch.Tensor, start_pair: int) -> torch.Tensor:
    """Single-shift table positions [pc, BL] of the cycles of these pairs (generator 0 of a side)."""
    cyc = torch.arange(cfg.bl, dtype=torch.int64, device=pairs.device)
    if cfg.lfsr_restart:
        t = cyc.expand(pairs.numel(), cfg.bl)
    else:
        t = (start_pair + pairs)[:, None] * cfg.bl + cyc[None, :]
    return (t * cfg.steps_per_cycle) % ((1 << cfg.lfsr_width) - 1)


def cycle_table(cfg: EssopConfig, side: str, min_len: int, device) -> torch.Tensor:
    """R(t) of a side's generator 0 for cycles t = 0, 1, ... (entry t = single-shift entry S*t mod period),
    repeated to at least `min_len` + period entries so that any run of min_len cycles, started anywhere in
    the period, is one contiguous slice. uint8 when q <= 8, else int32."""
    period = (1 << cfg.lfsr_width) - 1
    reps = 1 + -(-min_len // period)
    device = torch.device(device)
    key = ("cycle", side, cfg.lfsr_width, cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d, cfg.q,
           cfg.steps_per_cycle, reps, str(device))
    tab = _tables.get(key)
    if tab is None:
        single = lfsr_table(cfg, side, "cpu")
        idx = (torch.arange(period, dtype=torch.int64) * cfg.steps_per_cycle) % period
        tab = single[idx].to(torch.uint8 if cfg.q <= 8 else torch.int32).repeat(reps).to(device)
        _tables[key] = tab
    return tab


def counts_shared(cfg: EssopConfig, amax: torch.Tensor, bmax: torch.Tensor, rows_x, rows_d, start_pair: int,
                  signed_x: bool = True, signed_d: bool = True,
                  chunk_rows: int | None = None) -> torch.Tensor:
    """Counts int64 [m, n] in sharing='shared' mode, touching only the (pair, cycle) rows that can count.

    amax, bmax: [P] largest |magnitude| of each pair's x and delta; rows_x(pairs) / rows_d(pairs): signed
    magnitudes ([K, n] / [K, m], any real dtype holding +-(2**q - 1)) of the pairs listed in an int64 tensor (one row per entry).
    With one generator per side, X(t) is all zero iff R_x(t) >= amax and D(t) iff R_d(t) >= bmax, so those
    rows are skipped before any [rows, n] tensor exists. signed_x / signed_d False promise no negative
    magnitudes (ReLU activations) and skip the negative comparison. The random numbers of a run of pairs
    are one contiguous slice of the cycle table (run-on), or its first BL entries for every pair (restart)."""
    if cfg.sharing != "shared":
        raise ValueError(f"counts_shared needs sharing='shared', not {cfg.sharing!r}")
    device = amax.device
    if chunk_rows is None:
        chunk_rows = CUDA_CHUNK_ROWS if device.type == "cuda" else DEFAULT_CHUNK_ROWS
    P = amax.numel()
    BL = cfg.bl
    period = (1 << cfg.lfsr_width) - 1
    step = max(1, chunk_rows // BL)
    tx, td = cycle_table(cfg, "x", step * BL, device), cycle_table(cfg, "d", step * BL, device)
    small = tx.dtype
    amax, bmax = amax.to(small), bmax.to(small)
    counts = None
    for p0 in range(0, P, step):
        p1 = min(P, p0 + step)
        if cfg.lfsr_restart:
            Rx, Rd = tx[:BL].expand(p1 - p0, BL), td[:BL].expand(p1 - p0, BL)
        else:
            t0 = ((start_pair + p0) * BL) % period
            Rx = tx[t0:t0 + (p1 - p0) * BL].view(p1 - p0, BL)
            Rd = td[t0:t0 + (p1 - p0) * BL].view(p1 - p0, BL)
        keep = torch.lt(Rx, amax[p0:p1, None])
        keep &= torch.lt(Rd, bmax[p0:p1, None])
        pi, ci = keep.nonzero(as_tuple=True)
        if pi.numel() == 0:
            continue
        pg = pi + p0
        sx, sd = rows_x(pg), rows_d(pg)
        X = _stream(Rx[pi, ci].to(sx.dtype)[:, None], sx, signed_x)
        D = _stream(Rd[pi, ci].to(sd.dtype)[:, None], sd, signed_d)
        part = _gemm(_pad8(D.t(), 1).contiguous(), _pad8(X, 0))
        counts = part if counts is None else counts + part
    if counts is None:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        counts = torch.zeros(rows_d(empty).shape[1], rows_x(empty).shape[1], dtype=torch.int64, device=device)
    return counts


#: Largest per-generator cycle table (generators x entries, bytes) counts_per_element builds.
MAX_GENERATOR_TABLE = 1 << 28


def generator_table(cfg: EssopConfig, side: str, count: int, min_len: int, device) -> torch.Tensor:
    """[count, period + min_len] table: row g holds R_g(t) of per-element generator g (which starts
    g * phase_stride single shifts after the base seed) for cycles t = 0, 1, ..., so that any run of min_len
    cycles of every generator is one column slice."""
    period = (1 << cfg.lfsr_width) - 1
    length = period + min_len
    device = torch.device(device)
    key = ("gen", side, cfg.lfsr_width, cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d, cfg.q,
           cfg.steps_per_cycle, cfg.phase_stride, count, length, str(device))
    tab = _tables.get(key)
    if tab is None:
        single = lfsr_table(cfg, side, "cpu")
        small = torch.uint8 if cfg.q <= 8 else torch.int16
        t = torch.arange(length, dtype=torch.int64) * cfg.steps_per_cycle
        rows = [single[(g * cfg.phase_stride + t) % period].to(small) for g in range(count)]
        tab = torch.stack(rows).to(device)
        _tables[key] = tab
    return tab


def counts_per_element(cfg: EssopConfig, sa: torch.Tensor, sb: torch.Tensor, start_pair: int,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS) -> torch.Tensor:
    """Counts int64 [m, n] in sharing='per_element' mode from signed magnitudes sa [P, n], sb [P, m]
    (integers in any real dtype): generator j of a side is phase_stride * j single shifts ahead of
    generator 0. With per-generator cycle tables the random numbers of a run of pairs are a column slice;
    every (pair, cycle) row is formed (no row can be skipped without forming it)."""
    if cfg.sharing != "per_element":
        raise ValueError(f"counts_per_element needs sharing='per_element', not {cfg.sharing!r}")
    device = sa.device
    P, n = sa.shape
    m = sb.shape[1]
    BL = cfg.bl
    period = (1 << cfg.lfsr_width) - 1
    step = max(1, min(chunk_rows, 1 << 15) // BL)
    L = step * BL
    counts = torch.zeros(m, n, dtype=torch.int64, device=device)
    signed_x, signed_d = bool((sa < 0).any()), bool((sb < 0).any())
    if (n + m) * (period + L) > MAX_GENERATOR_TABLE:
        return _counts_per_element_indexed(cfg, sa, sb, start_pair, chunk_rows, signed_x, signed_d)
    tx = generator_table(cfg, "x", n, L, device)
    td = generator_table(cfg, "d", m, L, device)
    wide = torch.int16 if cfg.q <= 15 else torch.int32
    sa = sa.to(tx.dtype if not signed_x else wide)
    sb = sb.to(td.dtype if not signed_d else wide)
    for p0 in range(0, P, step):
        p1 = min(P, p0 + step)
        pc = p1 - p0
        if cfg.lfsr_restart:
            Rx = tx[:, :BL].t().unsqueeze(0).expand(pc, BL, n)
            Rd = td[:, :BL].t().unsqueeze(0).expand(pc, BL, m)
        else:
            t0 = ((start_pair + p0) * BL) % period
            Rx = tx[:, t0:t0 + pc * BL].t().unflatten(0, (pc, BL))
            Rd = td[:, t0:t0 + pc * BL].t().unflatten(0, (pc, BL))
        X = _stream(Rx.to(sa.dtype), sa[p0:p1, None, :], signed_x).reshape(pc * BL, n)
        D = _stream(Rd.to(sb.dtype), sb[p0:p1, None, :], signed_d).reshape(pc * BL, m)
        counts += _gemm(_pad8(D.t(), 1).contiguous(), _pad8(X, 0))
    return counts


def _counts_per_element_indexed(cfg, sa, sb, start_pair, chunk_rows, signed_x, signed_d):
    """per_element for wide LFSRs: random numbers gathered through int64 indices (slower, less memory)."""
    device = sa.device
    P, n = sa.shape
    m = sb.shape[1]
    period = (1 << cfg.lfsr_width) - 1
    tx, td = lfsr_table(cfg, "x", device), lfsr_table(cfg, "d", device)
    ox = torch.arange(n, dtype=torch.int64, device=device) * cfg.phase_stride
    od = torch.arange(m, dtype=torch.int64, device=device) * cfg.phase_stride
    counts = torch.zeros(m, n, dtype=torch.int64, device=device)
    step = max(1, chunk_rows // (cfg.bl * max(8, n, m) // 8))
    sa, sb = sa.to(torch.float32), sb.to(torch.float32)
    for p0 in range(0, P, step):
        pairs = torch.arange(p0, min(P, p0 + step), device=device)
        pos = _positions(cfg, pairs, start_pair).reshape(-1)
        rep = torch.repeat_interleave(pairs, cfg.bl)
        Rx = tx[(pos[:, None] + ox[None, :]) % period].to(torch.float32)
        Rd = td[(pos[:, None] + od[None, :]) % period].to(torch.float32)
        X = _stream(Rx, sa[rep], signed_x)
        D = _stream(Rd, sb[rep], signed_d)
        counts += _gemm(_pad8(D.t(), 1).contiguous(), _pad8(X, 0))
    return counts


def counts_from_signed(cfg: EssopConfig, sa: torch.Tensor, sb: torch.Tensor, start_pair: int,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS) -> torch.Tensor:
    """Counts int64 [m, n] from signed magnitudes sa [P, n], sb [P, m] (float32 integers, |s| < 2**q)."""
    sa, sb = sa.to(torch.float32), sb.to(torch.float32)
    if cfg.sharing == "per_element":
        return counts_per_element(cfg, sa, sb, start_pair, chunk_rows)
    return counts_shared(cfg, sa.abs().amax(1), sb.abs().amax(1), lambda i: sa[i], lambda i: sb[i], start_pair,
                         bool((sa < 0).any()), bool((sb < 0).any()), chunk_rows)


def signed_magnitudes(bits: torch.Tensor, E: int, q: int) -> torch.Tensor:
    """+-a (float32) from FP16 bit patterns by the integer barrel-shifter path of spec section 3."""
    a, neg, _, _ = magnitudes(bits, E, q)
    a = a.to(torch.float32)
    return torch.where(neg, -a, a)


def signed_magnitudes_f32(v: torch.Tensor, s: int, E: int, q: int) -> torch.Tensor:
    """+-a (float32) of FP16(v * 2**s) for finite FP32 v, without bit fiddling: v * 2**s is exact, the cast
    rounds to FP16 as the array's input would, FP16 * 2**(q - E) is exact in FP32 (no FP16 value is too small
    for that), and truncation towards zero is floor of the magnitude with the sign kept. Equal to
    `signed_magnitudes(bits(FP16(v * 2**s)), E, q)` (tests/training/test_kernel.py)."""
    if not (-126 <= s <= 127 and -126 <= q - E <= 127):
        raise ValueError(f"scale 2**{s} or 2**{q - E} is outside the FP32 exponent range")
    h = (v * (2.0 ** s)).to(torch.float16).to(torch.float32)
    lim = float((1 << q) - 1)
    return h.mul_(2.0 ** (q - E)).trunc_().clamp_(-lim, lim)


def essop_counts(x: Any, d: Any, exp_x: int, exp_d: int, start_pair: int, cfg: EssopConfig,
                 device: torch.device | str | None = None,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> torch.Tensor:
    """Counts int64 [m, n] of one accumulation group, identical to the golden model's.

    x: FP16 [P, n] (float16 tensor/array or uint16 bit patterns), d: FP16 [P, m]; exp_x, exp_d: the group's
    block exponents; start_pair: pairs processed since reset before this group (ignored with lfsr_restart).
    Non-finite inputs count as magnitude 0 here (the array's counts do the same; poisoning is an output
    matter, see `nonfinite_inputs`)."""
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
    return counts_from_signed(cfg, signed_magnitudes(xb, ex, cfg.q), signed_magnitudes(db, ed, cfg.q),
                              int(start_pair), chunk_rows)


def nonfinite_inputs(bits: torch.Tensor) -> torch.Tensor:
    """Bool mask of Inf/NaN FP16 patterns (they poison their row or column, spec section 1)."""
    return ((bits >> 10) & 0x1F) == 31

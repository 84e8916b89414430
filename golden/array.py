"""The whole ESSOP array in the golden model (spec §5-§9).

Two forms of the same semantics, kept apart on purpose so each checks the other:
- `EssopArrayModel.process_group`: readable, cycle by cycle, the way the hardware runs;
- `counts_reference`: vectorised over pairs and cycles (a signed bitstream GEMM), for layer-sized groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.random_sources import random_numbers

__all__ = ["EssopArrayModel", "GroupResult", "counts_reference", "group_result"]


@dataclass(frozen=True)
class GroupResult:
    """What the array outputs for one accumulation group."""
    counts: np.ndarray      # int64 [m, n], signed counts C_ij
    e_out: int              # E_x + E_d - L - lr_shift
    fp16: np.ndarray        # uint16 [m, n], count_to_fp16 with NaN where poisoned
    nonfinite: bool         # some input was Inf/NaN
    saturated: bool         # some magnitude clamped (block exponents too small)
    exp_x: int
    exp_d: int
    poison_rows: np.ndarray  # bool [m]
    poison_cols: np.ndarray  # bool [n]
    pairs: int               # pairs in the group


def _check_pairs(cfg: EssopConfig, xs, ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ds = fp16.as_bits(xs), fp16.as_bits(ds)
    if xs.ndim != 2 or ds.ndim != 2:
        raise ValueError(f"xs and ds must be 2-D [pairs, length], not shapes {xs.shape} and {ds.shape}")
    if xs.shape[0] != ds.shape[0]:
        raise ValueError(f"xs and ds must hold the same number of pairs, not {xs.shape[0]} and {ds.shape[0]}")
    if xs.shape[0] == 0:
        raise ValueError("a group needs at least one vector pair, got none")
    if xs.shape[1] != cfg.cols:
        raise ValueError(f"x vectors must have cols={cfg.cols} elements, not {xs.shape[1]}")
    if ds.shape[1] != cfg.rows:
        raise ValueError(f"delta vectors must have rows={cfg.rows} elements, not {ds.shape[1]}")
    return xs, ds


def _group_exponents(cfg: EssopConfig, xs, ds, exp_x, exp_d) -> tuple[int, int]:
    if cfg.scaling == "per_pair":
        if exp_x is not None or exp_d is not None:
            raise ValueError("exp_x/exp_d are inputs only with scaling='block'")
        return fp16.vector_exponent(xs[0]), fp16.vector_exponent(ds[0])
    if exp_x is None or exp_d is None:
        raise ValueError("scaling='block' needs exp_x and exp_d")
    for name, v in (("exp_x", exp_x), ("exp_d", exp_d)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, not {v!r}")
        if not cfg.exp_port_min <= v <= cfg.exp_port_max:
            raise ValueError(f"{name} must be in [{cfg.exp_port_min}, {cfg.exp_port_max}], not {v!r}")
    return int(exp_x), int(exp_d)


def group_result(cfg: EssopConfig, counts, ex: int, ed: int, nonfin_rows, nonfin_cols, saturated: bool,
                 pairs: int) -> GroupResult:
    """What the array outputs for a group's counts (spec §7-§9): E_out = ex + ed - L - lr_shift, FP16 with NaN
    in poisoned rows and columns (nonfin_rows [m], nonfin_cols [n] bool), and the group's flags."""
    e_out = ex + ed - cfg.bl_log2 - cfg.lr_shift
    out16 = fp16.count_to_fp16(counts, e_out)
    poisoned = nonfin_rows[:, None] | nonfin_cols[None, :]
    out16 = np.where(poisoned, np.uint16(fp16.NAN16), out16).astype(np.uint16)
    return GroupResult(counts=counts, e_out=e_out, fp16=out16,
                       nonfinite=bool(nonfin_rows.any() or nonfin_cols.any()), saturated=bool(saturated),
                       exp_x=ex, exp_d=ed, poison_rows=nonfin_rows, poison_cols=nonfin_cols, pairs=pairs)


class EssopArrayModel:
    """Cycle-level model of EssopArray: keeps the LFSR position (pairs since reset) across groups."""

    def __init__(self, cfg: EssopConfig):
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.pairs_done = 0

    def process_group(self, xs, ds, exp_x=None, exp_d=None) -> GroupResult:
        """One accumulation group of P pairs (1 <= P <= acc_depth), cycle by cycle."""
        cfg = self.cfg
        xs, ds = _check_pairs(cfg, xs, ds)
        P = xs.shape[0]
        if P > cfg.acc_depth:
            raise ValueError(f"a group holds at most acc_depth={cfg.acc_depth} pairs, not {P}")
        ex, ed = _group_exponents(cfg, xs, ds, exp_x, exp_d)
        counts = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
        poison_rows = np.zeros(cfg.rows, dtype=bool)
        poison_cols = np.zeros(cfg.cols, dtype=bool)
        saturated = False
        for p in range(P):
            a, sx, nfx, satx = fp16.to_magnitudes(xs[p], ex, cfg.q)
            b, sd, nfd, satd = fp16.to_magnitudes(ds[p], ed, cfg.q)
            poison_cols |= nfx
            poison_rows |= nfd
            saturated |= bool(satx.any() or satd.any())
            start = self.pairs_done * cfg.bl
            Rx = random_numbers(cfg, "x", cfg.bl, start)   # [1 or n, BL]
            Rd = random_numbers(cfg, "d", cfg.bl, start)   # [1 or m, BL]
            down = (sd[:, None] ^ sx[None, :]) == 1
            for t in range(cfg.bl):
                X = Rx[:, t] < a            # comparator per column (shared: one R for all)
                D = Rd[:, t] < b
                hit = (D[:, None] & X[None, :]).astype(np.int64)     # AND gates
                counts += np.where(down, -hit, hit)                   # up/down by sign XOR
            self.pairs_done += 1
        return group_result(cfg, counts, ex, ed, poison_rows, poison_cols, saturated, P)

    def run(self, xs, ds, last, exp_x=None, exp_d=None) -> list[GroupResult]:
        """A stream of pairs as the RTL sees it: groups end at last[p] or after acc_depth pairs.
        exp_x / exp_d (block scaling) are per-pair sequences; a group uses its first pair's."""
        cfg = self.cfg
        xs, ds = _check_pairs(cfg, xs, ds)
        last = np.asarray(last, dtype=bool)
        if last.shape != (xs.shape[0],):
            raise ValueError(f"last must have one flag per pair ({xs.shape[0]}), not shape {last.shape}")
        results, start = [], 0
        for p in range(xs.shape[0]):
            if last[p] or p - start + 1 == cfg.acc_depth or p == xs.shape[0] - 1:
                if not last[p] and p - start + 1 < cfg.acc_depth and p == xs.shape[0] - 1:
                    raise ValueError("the stream ends inside an accumulation group: mark its last pair")
                ex = None if exp_x is None else exp_x[start]
                ed = None if exp_d is None else exp_d[start]
                results.append(self.process_group(xs[start:p + 1], ds[start:p + 1], ex, ed))
                start = p + 1
        return results


def counts_reference(cfg: EssopConfig, xs, ds, exp_x: int, exp_d: int, start_pair: int = 0):
    """Counts of one group of many pairs, vectorised: C = sum over (pair, cycle) of sign-weighted
    D(t) (x) X(t), as one integer GEMM. Returns (counts int64 [m, n], e_out)."""
    xs, ds = _check_pairs(cfg, xs, ds)
    P = xs.shape[0]
    ex, ed = int(exp_x), int(exp_d)
    a, sx, _, _ = fp16.to_magnitudes(xs, ex, cfg.q)     # [P, n]
    b, sd, _, _ = fp16.to_magnitudes(ds, ed, cfg.q)     # [P, m]
    Rx = random_numbers(cfg, "x", P * cfg.bl, start_pair * cfg.bl).reshape(-1, P, cfg.bl)  # [gx, P, BL]
    Rd = random_numbers(cfg, "d", P * cfg.bl, start_pair * cfg.bl).reshape(-1, P, cfg.bl)
    # X[p, t, j] = R_x,j(p, t) < a[p, j]  (R broadcast over j when shared)
    X = (np.moveaxis(Rx, 0, -1) < a[:, None, :]).astype(np.int64) * (1 - 2 * sx[:, None, :])
    D = (np.moveaxis(Rd, 0, -1) < b[:, None, :]).astype(np.int64) * (1 - 2 * sd[:, None, :])
    counts = D.reshape(P * cfg.bl, cfg.rows).T @ X.reshape(P * cfg.bl, cfg.cols)
    return counts, ex + ed - cfg.bl_log2 - cfg.lr_shift

"""Random numbers for the training kernels: each side's m-sequence over its whole period, as tables.

The states come from the golden model's generator (`essop.golden.lfsr.period_states`): one m-sequence
generator in the project. A table holds the low q bits of every state; the cycle table reads it S =
steps_per_cycle shifts apart, so cycle c of generator 0 is entry c; per_element generator k is the same table
read k's cycle offset later (spec section 4).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from essop.config import EssopConfig
from essop.golden.lfsr import period_states

#: Largest LFSR width whose full-period table the kernel builds (2**24 - 1 entries).
MAX_TABLE_WIDTH = 24
_tables: dict[tuple, torch.Tensor] = {}


def check_table_width(cfg: EssopConfig) -> None:
    if cfg.lfsr_width > MAX_TABLE_WIDTH:
        raise ValueError(f"the training kernel tabulates LFSRs of width <= {MAX_TABLE_WIDTH}, "
                         f"not lfsr_width={cfg.lfsr_width!r}")


def lfsr_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Low q bits of every state of one side's m-sequence, from that side's base seed (int32 [2**w - 1]),
    entry k = k single shifts after the seed."""
    if side not in ("x", "d"):
        raise ValueError(f"side must be 'x' or 'd', not {side!r}")
    check_table_width(cfg)
    taps = cfg.lfsr_taps_x if side == "x" else cfg.lfsr_taps_d
    seed = cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d
    device = torch.device(device)
    key = ("single", tuple(taps), cfg.lfsr_width, seed, cfg.q, str(device))
    table = _tables.get(key)
    if table is None:
        cpu_key = key[:-1] + ("cpu",)
        table = _tables.get(cpu_key)
        if table is None:
            states = period_states(tuple(taps), cfg.lfsr_width, seed)
            table = torch.from_numpy((states & ((1 << cfg.q) - 1)).astype(np.int32))
            _tables[cpu_key] = table
        table = table.to(device)
        _tables[key] = table
    return table


def cycle_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """R(c) of a side's generator 0 for cycles c = 0 .. period + max(BL, 64) - 1 (entry c = the single-shift
    entry S * c mod period), so that the BL cycles of any pair, and any 64 of them, are one contiguous slice.
    uint8 when q <= 8, else int16 holding the uint16 values."""
    period = (1 << cfg.lfsr_width) - 1
    device = torch.device(device)
    length = period + max(cfg.bl, 64)
    key = ("cycle", side, cfg.lfsr_width, cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d, cfg.q,
           cfg.steps_per_cycle, length, str(device))
    tab = _tables.get(key)
    if tab is None:
        single = lfsr_table(cfg, side, "cpu")
        idx = (torch.arange(length, dtype=torch.int64) * cfg.steps_per_cycle) % period
        tab = single[idx].to(torch.uint8 if cfg.q <= 8 else torch.int16).to(device)
        _tables[key] = tab
    return tab


def generator_cycle_offsets(cfg: EssopConfig, count: int) -> torch.Tensor | None:
    """per_element: generator k starts k * phase_stride single shifts after generator 0 (spec section 4), so
    its cycle c is generator 0's cycle c + k * phase_stride / S (mod period) when S = steps_per_cycle is
    invertible modulo the period. int64 [count], or None when it is not."""
    period = (1 << cfg.lfsr_width) - 1
    S = cfg.steps_per_cycle
    if math.gcd(S, period) != 1:
        return None
    inv = pow(S, -1, period)
    return torch.tensor([(k * cfg.phase_stride * inv) % period for k in range(count)], dtype=torch.int64)

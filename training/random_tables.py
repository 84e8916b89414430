"""Random numbers for the training kernels: essop.golden.random_sources tabulated (one definition of every source
in the project, spec section 4).

A side's generator k gives, in cycle c of the run-on count (pair p uses cycles p*BL .. p*BL + BL - 1),

    R_k(c) = base[(c + offset_k) mod period] ^ word_k ^ pair_word(c div BL)

The kernels read `base` as a table (`cycle_table`: extended past the period so that any BL or 64 consecutive
cycles are one contiguous slice; `base_table` for the PyTorch backend), `offset_k` (`generator_offsets`: LFSR
per_element), `word_k` (`generator_words`: Sobol per_element) and the pair words (`pair_words`: rng_shift).
`lfsr_table` is the single-shift m-sequence of the LFSR source (tests compare it with the golden generator).
"""
from __future__ import annotations

import numpy as np
import torch

from essop.config import EssopConfig
from essop.golden import random_sources
from essop.golden.lfsr import period_states

__all__ = ["check_table_width", "lfsr_table", "base_table", "cycle_table", "generator_offsets", "generator_words",
           "pair_words", "MAX_TABLE_WIDTH"]

#: Largest LFSR width whose full-period table the kernel builds (2**24 - 1 entries).
MAX_TABLE_WIDTH = 24
_tables: dict[tuple, torch.Tensor] = {}


def check_table_width(cfg: EssopConfig) -> None:
    """The LFSR source needs a table of its whole period; the Sobol source's period is 2**q."""
    if cfg.rng == "lfsr" and cfg.lfsr_width > MAX_TABLE_WIDTH:
        raise ValueError(f"the training kernel tabulates LFSRs of width <= {MAX_TABLE_WIDTH}, "
                         f"not lfsr_width={cfg.lfsr_width!r}")


def _check_side(side: str) -> None:
    if side not in ("x", "d"):
        raise ValueError(f"side must be 'x' or 'd', not {side!r}")


def _cached(key: tuple, device: torch.device, make) -> torch.Tensor:
    """A table built once on the CPU (`make()`), copied once to each device."""
    full = key + (str(device),)
    tab = _tables.get(full)
    if tab is None:
        cpu = key + ("cpu",)
        tab = _tables.get(cpu)
        if tab is None:
            tab = _tables[cpu] = make()
        tab = _tables[full] = tab.to(device)
    return tab


def _source_key(cfg: EssopConfig, side: str) -> tuple:
    if cfg.rng == "sobol":
        return ("sobol", side, cfg.q)
    return ("lfsr", side, cfg.lfsr_width, cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d, cfg.q,
            cfg.steps_per_cycle)


def lfsr_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Low q bits of every state of one side's LFSR m-sequence, from that side's base seed (int32 [2**w - 1]),
    entry k = k single shifts after the seed."""
    _check_side(side)
    if cfg.lfsr_width > MAX_TABLE_WIDTH:
        raise ValueError(f"the training kernel tabulates LFSRs of width <= {MAX_TABLE_WIDTH}, "
                         f"not lfsr_width={cfg.lfsr_width!r}")
    taps = cfg.lfsr_taps_x if side == "x" else cfg.lfsr_taps_d
    seed = cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d

    def make():
        states = period_states(tuple(taps), cfg.lfsr_width, seed)
        return torch.from_numpy((states & ((1 << cfg.q) - 1)).astype(np.int32))
    return _cached(("single", tuple(taps), cfg.lfsr_width, seed, cfg.q), torch.device(device), make)


def base_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Generator 0's numbers of cycles 0 .. rng_period - 1 (int32 [rng_period]): random_sources.base_sequence."""
    _check_side(side)
    check_table_width(cfg)
    return _cached(("base",) + _source_key(cfg, side), torch.device(device),
                   lambda: torch.from_numpy(random_sources.base_sequence(cfg, side).astype(np.int32)))


def cycle_table(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """base_table extended to cycles 0 .. rng_period + max(BL, 64) - 1 (entry c = base[c mod period]), so that
    the BL cycles of any pair, and any 64 of them, are one contiguous slice. uint8 when q <= 8, else int16
    holding the uint16 values (the native kernel's lanes)."""
    length = cfg.rng_period + max(cfg.bl, 64)

    def make():
        base = base_table(cfg, side, "cpu").to(torch.int64)
        tab = base[torch.arange(length, dtype=torch.int64) % base.numel()]
        if cfg.q <= 8:
            return tab.to(torch.uint8)
        return torch.where(tab >= 1 << 15, tab - (1 << 16), tab).to(torch.int16)
    return _cached(("cycle", length) + _source_key(cfg, side), torch.device(device), make)


def generator_offsets(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Cycle offset of each of the side's generators into the base table (int64 [G]; G = 1 when shared)."""
    # A copy: golden/random_sources caches its arrays read-only, and a tensor must not alias them.
    return torch.tensor(random_sources.generator_offsets(cfg, side), device=device)


def generator_words(cfg: EssopConfig, side: str, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """Constant XOR word of each generator (int64 [G]), or None when all are 0."""
    words = random_sources.generator_words(cfg, side)
    return torch.tensor(words, device=device) if words.any() else None


def pair_words(cfg: EssopConfig, side: str, start_pair: int, count: int,
               device: torch.device | str = "cpu") -> torch.Tensor | None:
    """XOR words of local pairs 0 .. count - 1, which are pairs start_pair + p of the run-on count (int64
    [count]; with lfsr_restart every pair is pair 0), or None without rng_shift."""
    if not cfg.rng_shift:
        return None
    pairs = np.zeros(count, np.int64) if cfg.lfsr_restart else np.arange(start_pair, start_pair + count,
                                                                          dtype=np.int64)
    return torch.tensor(random_sources.pair_words(cfg, side, pairs), device=device)

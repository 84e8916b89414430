"""LFSR block of the golden model (spec §4): Fibonacci, XOR feedback, leap-forward by S shifts per cycle."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from essop.config import EssopConfig

__all__ = ["Lfsr", "period_states", "random_numbers"]


class Lfsr:
    """One w-bit Fibonacci LFSR: feedback = XOR of bit (t-1) for each tap t; state shifts left."""

    def __init__(self, taps: tuple[int, ...], width: int, seed: int):
        if not 1 <= seed < (1 << width):
            raise ValueError(f"seed must be in [1, 2**{width} - 1], not {seed!r}")
        if not taps or max(taps) != width or min(taps) < 1:
            raise ValueError(f"taps must lie in [1, {width}] and include {width}, not {taps!r}")
        self.taps, self.width, self.state = tuple(taps), width, seed
        self._mask = (1 << width) - 1

    def shift(self) -> int:
        fb = 0
        for t in self.taps:
            fb ^= (self.state >> (t - 1)) & 1
        self.state = ((self.state << 1) | fb) & self._mask
        return self.state

    def leap(self, steps: int) -> int:
        for _ in range(steps):
            self.shift()
        return self.state


@lru_cache(maxsize=8)
def period_states(taps: tuple[int, ...], width: int, seed: int) -> np.ndarray:
    """Every state of the m-sequence from `seed`, one shift apart (2**w - 1 of them), vectorised.

    Uses the Fibonacci structure: bit k of state_t is the sequence bit s[t + w - 1 - k] where
    s[n + w] = XOR_t s[n + w - t]; the bit sequence is generated once and the states read off it.
    """
    period = (1 << width) - 1
    n = period + width
    s = np.zeros(n, dtype=np.uint8)
    # Initial bits: state_0 bit k = s[w - 1 - k].
    for k in range(width):
        s[width - 1 - k] = (seed >> k) & 1
    # s[i] for i >= w: feedback of the state whose newest bit is s[i-1]: bit (t-1) of that state is s[i - t].
    # Generated in blocks of `min tap distance` so each block is vectorised (recurrence depth >= that distance).
    lag = min(taps)
    i = width
    while i < n:
        j = min(i + lag, n)
        acc = np.zeros(j - i, dtype=np.uint8)
        for t in taps:
            acc ^= s[i - t:j - t]
        s[i:j] = acc
        i = j
    # state_t = sum_k s[t + w - 1 - k] << k
    states = np.zeros(period, dtype=np.int64)
    for k in range(width):
        states |= s[width - 1 - k: width - 1 - k + period].astype(np.int64) << k
    return states


def random_numbers(cfg: EssopConfig, side: str, n_cycles: int, start_cycle: int = 0) -> np.ndarray:
    """q-bit random numbers R[g, t] of every generator g on one side ("x" or "d") for cycles
    start_cycle .. start_cycle + n_cycles - 1 (spec §4). With cfg.lfsr_restart each pair restarts, so the
    cycle index used is the cycle within its pair."""
    if side not in ("x", "d"):
        raise ValueError(f"side must be 'x' or 'd', not {side!r}")
    taps = cfg.lfsr_taps_x if side == "x" else cfg.lfsr_taps_d
    seeds = cfg.lfsr_seeds_x if side == "x" else cfg.lfsr_seeds_d
    base_seed = cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d
    width, period = cfg.lfsr_width, (1 << cfg.lfsr_width) - 1
    cycles = np.arange(start_cycle, start_cycle + n_cycles, dtype=np.int64)
    if cfg.lfsr_restart:
        cycles = cycles % cfg.bl
    states = period_states(tuple(taps), width, base_seed)
    # Generator g starts g * phase_stride shifts after the base seed (per_element) — or is the base (shared).
    phase = np.arange(len(seeds), dtype=np.int64) * (cfg.phase_stride if len(seeds) > 1 else 0)
    if states[phase[-1] % period] != seeds[-1]:  # the jump-ahead seeds and this sequence must agree
        raise AssertionError("LFSR seeds disagree with the stepped sequence")
    idx = (phase[:, None] + cycles[None, :] * cfg.steps_per_cycle) % period
    return (states[idx] & ((1 << cfg.q) - 1)).astype(np.int64)

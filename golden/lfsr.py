"""LFSR block of the golden model (spec §4): Fibonacci, XOR feedback, leap-forward by S shifts per cycle.

`Lfsr` steps one register the way the hardware does; `period_states` lists a whole m-sequence at once and
`states_after` jumps many states at once (both vectorised). What the array's generators put on the comparators,
cycle by cycle, is essop.golden.random_sources.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from essop import lfsr_params

__all__ = ["Lfsr", "period_states", "states_after"]


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


def states_after(taps: tuple[int, ...], width: int, seed: int, shifts) -> np.ndarray:
    """The state `shifts[i]` single shifts after `seed`, for every entry of `shifts` (int64 array, any shape):
    the GF(2) matrix of 2**b shifts applied for every set bit b of each count."""
    shifts = np.asarray(shifts, dtype=np.int64) % ((1 << width) - 1)
    state = np.full(shifts.shape, seed, dtype=np.int64)
    bit = 0
    while (shifts >> bit).any():
        sel = ((shifts >> bit) & 1).astype(bool)
        if sel.any():
            rows = lfsr_params.power_rows(tuple(taps), width, 1 << bit)
            v = state[sel]
            out = np.zeros_like(v)
            for r, row in enumerate(rows):
                out |= (np.bitwise_count(v & row).astype(np.int64) & 1) << r
            state[sel] = out
        bit += 1
    return state

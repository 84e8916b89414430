"""Random-number sources of the array (spec §4): what every generator puts on its comparators, cycle by cycle.

The one definition in the project. The golden array model reads its numbers here (`random_numbers`); the
training kernels tabulate the same parts (essop.training.random_tables: `base_sequence` as the cycle table,
`generator_offsets`, `generator_words`, `pair_words`); the statistics measure them; the RTL
(essop.hdl.random_sources) is tested against `random_numbers`.

Each side ("x" or "d") has G generators (1 when shared; cols or rows per_element; with LFSR element_words
the G share one register and differ by their words). Generator k's number in
cycle c of the run-on cycle count (pair p uses cycles p*BL .. p*BL + BL - 1) is

    R_k(c) = base[(c + offset_k) mod period] XOR word_k XOR pair_word(c div BL)

- `base`: generator 0's numbers over one period (`EssopConfig.rng_period`):
  * lfsr: base[c] = low q bits of the m-sequence state S*c single shifts after the side's seed (S =
    steps_per_cycle; the x side uses the XAPP052 taps, the delta side their reciprocal), period 2**w - 1;
  * sobol: base[c] = the q-bit Sobol point c (Gray-code order, essop.sobol_params), period 2**q; dimension 1
    on the x side, dimension 2 on the delta side.
- `offset_k` (lfsr per_element without element_words): generator k starts k * phase_stride single shifts
  after generator 0, which is k * phase_stride / S cycles (mod 2**w - 1; S is coprime with the period,
  EssopConfig checks it). 0 otherwise.
- `word_k` (sobol per_element, LFSR element_words): element k's digital shift, EssopConfig.rng_words_x / _d.
  0 otherwise.
- `pair_word(p)` (rng_shift): low q bits (x side) or the next q bits (delta side) of the per-pair shift LFSR's
  state after p * rng_shift_steps shifts from rng_shift_seed (width EssopConfig.rng_shift_width). 0 without
  rng_shift.

With lfsr_restart every pair uses cycles 0 .. BL - 1 and pair word 0.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from essop import lfsr_params
from essop.config import EssopConfig
from essop.golden.lfsr import period_states, states_after

__all__ = ["SIDES", "base_sequence", "generator_count", "generator_offsets", "generator_words", "shift_states",
           "pair_words", "joint_period", "random_numbers", "MAX_SHIFT_TABLE_WIDTH"]

SIDES = ("x", "d")
#: Widest per-pair shift register whose whole period `pair_words` tabulates (wider ones are jumped to).
MAX_SHIFT_TABLE_WIDTH = 24


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be 'x' or 'd', not {side!r}")


def _taps(cfg: EssopConfig, side: str) -> tuple[int, ...]:
    return cfg.lfsr_taps_x if side == "x" else cfg.lfsr_taps_d


def _seed(cfg: EssopConfig, side: str) -> int:
    return cfg.lfsr_seed_x if side == "x" else cfg.lfsr_seed_d


@lru_cache(maxsize=8)
def _lfsr_base(taps: tuple[int, ...], width: int, seed: int, q: int, steps: int) -> np.ndarray:
    period = (1 << width) - 1
    states = period_states(taps, width, seed)
    base = states[(np.arange(period, dtype=np.int64) * steps) % period] & ((1 << q) - 1)
    base.flags.writeable = False
    return base


@lru_cache(maxsize=8)
def _sobol_base(directions: tuple[int, ...]) -> np.ndarray:
    q = len(directions)
    c = np.arange(1 << q, dtype=np.int64)
    gray = c ^ (c >> 1)
    base = np.zeros(1 << q, dtype=np.int64)
    for k, v in enumerate(directions):        # bit k of gray(c) selects direction word V_(k+1)
        base ^= ((gray >> k) & 1) * v
    base.flags.writeable = False
    return base


def base_sequence(cfg: EssopConfig, side: str) -> np.ndarray:
    """Generator 0's numbers of cycles 0 .. rng_period - 1, without the per-pair shift (int64, read-only)."""
    _check_side(side)
    if cfg.rng == "sobol":
        return _sobol_base(cfg.sobol_directions_x if side == "x" else cfg.sobol_directions_d)
    return _lfsr_base(tuple(_taps(cfg, side)), cfg.lfsr_width, _seed(cfg, side), cfg.q, cfg.steps_per_cycle)


def generator_count(cfg: EssopConfig, side: str) -> int:
    _check_side(side)
    if cfg.sharing == "shared":
        return 1
    return cfg.cols if side == "x" else cfg.rows


@lru_cache(maxsize=64)
def _lfsr_offsets(taps: tuple[int, ...], width: int, seed: int, steps: int, stride: int, count: int) -> np.ndarray:
    period = (1 << width) - 1
    inv = pow(steps, -1, period)      # steps is coprime with the period (EssopConfig refuses anything else)
    offsets = np.array([(k * stride * inv) % period for k in range(count)], dtype=np.int64)
    # The cycle offsets and the jump-ahead seeds (essop.lfsr_params) must name the same states.
    last_seed = lfsr_params.seeds(taps, width, seed, count, stride)[-1]
    if period_states(taps, width, seed)[(int(offsets[-1]) * steps) % period] != last_seed:
        raise AssertionError("LFSR seeds disagree with the stepped sequence")
    offsets.flags.writeable = False
    return offsets


def generator_offsets(cfg: EssopConfig, side: str) -> np.ndarray:
    """Cycle offset of every generator of a side into `base_sequence` (int64 [G], values < rng_period)."""
    count = generator_count(cfg, side)
    if cfg.rng != "lfsr" or count == 1 or cfg.element_words:
        return np.zeros(count, dtype=np.int64)
    return _lfsr_offsets(tuple(_taps(cfg, side)), cfg.lfsr_width, _seed(cfg, side), cfg.steps_per_cycle,
                         cfg.phase_stride, count)


def generator_words(cfg: EssopConfig, side: str) -> np.ndarray:
    """Constant XOR word of every generator of a side (int64 [G]; nonzero only for sobol per_element)."""
    _check_side(side)
    return np.array(cfg.rng_words_x if side == "x" else cfg.rng_words_d, dtype=np.int64)


@lru_cache(maxsize=4)
def _shift_states(taps: tuple[int, ...], width: int, seed: int, steps: int) -> np.ndarray:
    period = (1 << width) - 1
    states = period_states(taps, width, seed)[(np.arange(period, dtype=np.int64) * steps) % period]
    states.flags.writeable = False
    return states


def shift_states(cfg: EssopConfig, pairs) -> np.ndarray:
    """State of the per-pair shift LFSR at each pair number (int64, the shape of `pairs`): rng_shift_steps
    shifts per pair from rng_shift_seed."""
    pairs = np.asarray(pairs, dtype=np.int64)
    width, steps = cfg.rng_shift_width, cfg.rng_shift_steps
    period = (1 << width) - 1
    if width <= MAX_SHIFT_TABLE_WIDTH:
        return _shift_states(tuple(cfg.rng_shift_taps), width, cfg.rng_shift_seed, steps)[pairs % period]
    return states_after(cfg.rng_shift_taps, width, cfg.rng_shift_seed, ((pairs % period) * steps) % period)


def joint_period(cfg: EssopConfig) -> int:
    """Cycles after which the numbers of every generator pair repeat together: rng_period, or with rng_shift
    lcm(rng_period, BL * (2**rng_shift_width - 1)) (the pair words repeat every 2**width - 1 pairs); BL with
    lfsr_restart (every pair the same cycles)."""
    if cfg.lfsr_restart:
        return cfg.bl
    if not cfg.rng_shift:
        return cfg.rng_period
    return math.lcm(cfg.rng_period, cfg.bl * ((1 << cfg.rng_shift_width) - 1))


def pair_words(cfg: EssopConfig, side: str, pairs) -> np.ndarray:
    """The per-pair XOR word of each pair number on one side (int64, the shape of `pairs`): with rng_shift,
    bits [0, q) (x) or [q, 2q) (delta) of the shift LFSR's state; zeros without it. Pair numbers count from
    reset over all groups (lfsr_restart: callers pass 0)."""
    _check_side(side)
    pairs = np.asarray(pairs, dtype=np.int64)
    if not cfg.rng_shift:
        return np.zeros(pairs.shape, dtype=np.int64)
    lo = 0 if side == "x" else cfg.q
    return (shift_states(cfg, pairs) >> lo) & ((1 << cfg.q) - 1)


def random_numbers(cfg: EssopConfig, side: str, n_cycles: int, start_cycle: int = 0,
                   generators=None) -> np.ndarray:
    """q-bit random numbers R[g, t] of every generator g on one side ("x" or "d") for cycles
    start_cycle .. start_cycle + n_cycles - 1 of the run-on cycle count (int64 [G, n_cycles]; only the listed
    `generators` when given). With cfg.lfsr_restart each pair restarts: the cycle used is the cycle within its
    pair, the pair word pair 0's."""
    _check_side(side)
    cycles = np.arange(start_cycle, start_cycle + n_cycles, dtype=np.int64)
    pairs = cycles // cfg.bl
    if cfg.lfsr_restart:
        cycles = cycles % cfg.bl
        pairs = np.zeros_like(pairs)
    base = base_sequence(cfg, side)
    offsets, words = generator_offsets(cfg, side), generator_words(cfg, side)
    if generators is not None:
        offsets, words = offsets[list(generators)], words[list(generators)]
    R = base[(offsets[:, None] + cycles[None, :]) % len(base)] ^ words[:, None]
    if cfg.rng_shift:
        R = R ^ pair_words(cfg, side, pairs)[None, :]
    return R

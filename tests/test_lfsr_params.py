"""The XAPP052 table and its reciprocals are maximal length; jump-ahead equals stepping."""
import math

import pytest

from essop import lfsr_params
from essop.config import EssopConfig


def _period(taps, width):
    state, n = 1, 0
    mask = (1 << width) - 1
    while True:
        fb = 0
        for t in taps:
            fb ^= (state >> (t - 1)) & 1
        state = ((state << 1) | fb) & mask
        n += 1
        if state == 1:
            return n


@pytest.mark.parametrize("width", range(lfsr_params.MIN_WIDTH, 19))
def test_table_and_reciprocal_have_full_period(width):
    assert _period(lfsr_params.taps(width), width) == (1 << width) - 1
    assert _period(lfsr_params.reciprocal_taps(width), width) == (1 << width) - 1


def test_jump_equals_stepping():
    taps, width = lfsr_params.taps(12), 12
    state = 0x5A5
    for n in (0, 1, 7, 100, 4094, 4095, 10_000):
        s = state
        for _ in range(n):
            fb = 0
            for t in taps:
                fb ^= (s >> (t - 1)) & 1
            s = ((s << 1) | fb) & 0xFFF
        assert lfsr_params.jump(taps, width, state, n) == s


def test_unknown_width():
    with pytest.raises(ValueError, match="no maximal-length taps for LFSR width 40"):
        lfsr_params.taps(40)


# ---- the step rule: the default step count keeps the full period ------------------------------------------
def _smallest_coprime_at_least(q, period):
    s = q
    while math.gcd(s, period) != 1:
        s += 1
    return s


ALL_WQ = [(w, q) for w in range(lfsr_params.MIN_WIDTH, lfsr_params.MAX_WIDTH + 1) for q in range(1, min(16, w) + 1)]


def _cfg(w, q):
    return EssopConfig(q=q, lfsr_width=w, lfsr_seed_x=1, lfsr_seed_d=2)


def test_default_step_count_follows_the_rule_for_every_width_and_q():
    """steps_per_cycle (lfsr_steps unset) is the smallest S >= q coprime with 2**w - 1: q itself whenever q is
    coprime (those configurations behave as before the rule), never sharing a factor, and above w only for
    (w, q) = (6, 6) and (12, 12)."""
    above_w = []
    for w, q in ALL_WQ:
        s = _cfg(w, q).steps_per_cycle
        assert s == _smallest_coprime_at_least(q, (1 << w) - 1), (w, q)
        assert math.gcd(s, (1 << w) - 1) == 1 and s >= q
        if math.gcd(q, (1 << w) - 1) == 1:
            assert s == q
        if s > w:
            above_w.append((w, q, s))
    assert above_w == [(6, 6, 8), (12, 12, 16)]
    assert _cfg(16, 8).steps_per_cycle == 8
    assert [_cfg(16, q).steps_per_cycle for q in (3, 5, 6, 9, 10, 12, 15)] == [4, 7, 7, 11, 11, 13, 16]


def _stepped_period(taps, width, steps, seed=1):
    """Cycles until a register stepped `steps` single shifts per cycle returns to its seed, and the number of
    distinct states it visited (brute force, shift by shift)."""
    mask = (1 << width) - 1
    state, seen, cycles = seed, set(), 0
    while True:
        seen.add(state)
        cycles += 1
        for _ in range(steps):
            fb = 0
            for t in taps:
                fb ^= (state >> (t - 1)) & 1
            state = ((state << 1) | fb) & mask
        if state == seed:
            return cycles, len(seen)


@pytest.mark.parametrize("width", range(lfsr_params.MIN_WIDTH, 13))
def test_stepped_sequence_of_every_default_has_full_period_brute_force(width):
    """Widths 3..12: every default step count (every q), both sides' taps, visits all 2**w - 1 states."""
    period = (1 << width) - 1
    for s in sorted({_cfg(width, q).steps_per_cycle for q in range(1, min(16, width) + 1)}):
        for taps in (lfsr_params.taps(width), lfsr_params.reciprocal_taps(width)):
            assert _stepped_period(taps, width, s) == (period, period), (width, s)


def test_a_step_count_sharing_a_factor_visits_only_part_of_the_period():
    """What the rule prevents, by brute force: 3 shifts per cycle on a 6-bit register (63 = 3 * 3 * 7)."""
    assert _stepped_period(lfsr_params.taps(6), 6, 3) == (21, 21)


def test_stepped_sequence_of_every_default_has_full_period_algebraic():
    """Widths 13..32, by the algebra: one shift is the companion matrix M of a primitive polynomial, of order
    2**w - 1 (brute force above for w <= 18); S shifts are M**S, of order (2**w - 1) / gcd(S, 2**w - 1), so the
    stepped generator has the full period exactly when gcd(S, 2**w - 1) = 1 — true of every default. Spot
    check: M**S**(P / r) is not the identity on a state for any prime r dividing P (w = 16, 20; every default
    S), and the state returns after P leaps."""
    for w, q in ALL_WQ:
        if w >= 13:
            assert math.gcd(_cfg(w, q).steps_per_cycle, (1 << w) - 1) == 1
    for w, primes in ((16, (3, 5, 17, 257)), (20, (3, 5, 11, 31, 41))):
        P = (1 << w) - 1
        taps, seed = lfsr_params.taps(w), 0x1234
        for s in sorted({_cfg(w, q).steps_per_cycle for q in range(1, 17)}):
            assert lfsr_params.jump(taps, w, seed, s * P) == seed
            for r in primes:
                assert P % r == 0
                assert lfsr_params.jump(taps, w, seed, s * (P // r)) != seed, (w, s, r)


def test_stepped_sequence_full_period_brute_force_at_the_default_width():
    """w = 16 by brute force for the step counts the rule introduced (q = 3, 5, 6, 9, 10, 12, 15) and q = 8:
    the leap as its GF(2) matrix rows, applied 65535 times."""
    w, P = 16, (1 << 16) - 1
    for s in (4, 7, 8, 11, 13, 16):
        rows = lfsr_params.power_rows(lfsr_params.taps(w), w, s)
        state, seen = 0xACE1, bytearray(P + 1)
        for _ in range(P):
            seen[state] = 1
            state = sum((bin(state & row).count("1") & 1) << r for r, row in enumerate(rows))
        assert state == 0xACE1 and sum(seen) == P, s

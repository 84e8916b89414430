"""LFSR parameters shared by every implementation: maximal-length taps and generator start states.

Taps are the table of Xilinx application note XAPP052 ("Efficient Shift Registers, LFSR Counters, and Long
Pseudo-Random Sequence Generators", P. Alfke, 1996, table 3), numbered 1..w as there. We use them in
Fibonacci form with XOR feedback (XAPP052 uses XNOR; both are maximal length, with the all-zeros state —
XOR's lock-up state — excluded by requiring nonzero seeds):

    feedback = XOR of state bit (t - 1) for each tap t
    next     = ((state << 1) | feedback) & (2**w - 1)

tests/test_lfsr_params.py checks by brute force that each width up to 20 has the full period 2**w - 1, for the
table's taps and for their reciprocals.

A generator stepped S shifts per cycle visits every state of the period 2**w - 1 exactly when
gcd(S, 2**w - 1) = 1 (the stepped sequence is the m-sequence decimated by S: state S * c mod (2**w - 1)).
`default_steps` is the step rule of EssopConfig (docs/spec.md section 4).

This module only holds data, the step rule and the jump-ahead that places per-element generators on the
sequence; the golden model (essop.golden.lfsr) and the RTL (essop.hdl.lfsr) each implement the shift
themselves.
"""
from __future__ import annotations

import math
from functools import lru_cache

__all__ = ["XAPP052_TAPS", "MIN_WIDTH", "MAX_WIDTH", "taps", "period", "default_steps", "reciprocal_taps",
           "power_rows", "jump", "seeds"]

XAPP052_TAPS: dict[int, tuple[int, ...]] = {
    3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5), 10: (10, 7),
    11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1), 15: (15, 14), 16: (16, 15, 13, 4),
    17: (17, 14), 18: (18, 11), 19: (19, 6, 2, 1), 20: (20, 17), 21: (21, 19), 22: (22, 21), 23: (23, 18),
    24: (24, 23, 22, 17), 25: (25, 22), 26: (26, 6, 2, 1), 27: (27, 5, 2, 1), 28: (28, 25), 29: (29, 27),
    30: (30, 6, 4, 1), 31: (31, 28), 32: (32, 22, 2, 1),
}
MIN_WIDTH, MAX_WIDTH = min(XAPP052_TAPS), max(XAPP052_TAPS)


def taps(width: int) -> tuple[int, ...]:
    """XAPP052 taps of a maximal-length LFSR of this width."""
    try:
        return XAPP052_TAPS[width]
    except KeyError:
        raise ValueError(f"no maximal-length taps for LFSR width {width!r}; "
                         f"widths {MIN_WIDTH}..{MAX_WIDTH} are tabulated") from None


def period(width: int) -> int:
    """Single-shift period of a maximal-length register: 2**w - 1."""
    return (1 << width) - 1


def default_steps(width: int, q: int) -> int:
    """The step rule: the smallest S >= q with gcd(S, 2**w - 1) = 1. Each cycle's q-bit number is then made
    of fresh bits (S >= q) and the stepped generator keeps the full period (S coprime with it). S exceeds w
    only for (w, q) = (6, 6) -> 8 and (12, 12) -> 16 among the tabulated widths and q <= 16; the leap-forward
    network is one XOR of state bits per output bit whatever S is, so S > w costs no more hardware."""
    p = period(width)
    s = max(1, q)
    while math.gcd(s, p) != 1:
        s += 1
    return s


def reciprocal_taps(width: int) -> tuple[int, ...]:
    """Taps of the reciprocal (mirrored) polynomial: t -> w - t for every tap but w itself. The reciprocal
    of a primitive polynomial is primitive, and its m-sequence is the time reverse of the original's."""
    t = taps(width)
    return tuple(sorted({width} | {width - k for k in t if k != width}, reverse=True))


def _step_matrix(tap_list: tuple[int, ...], width: int) -> list[int]:
    """One shift as a GF(2) matrix: row r is the bit mask of the state bits XORed into new bit r."""
    rows = [0] * width
    for t in tap_list:
        rows[0] |= 1 << (t - 1)
    for r in range(1, width):
        rows[r] = 1 << (r - 1)
    return rows


def _mat_vec(mat: list[int], vec: int) -> int:
    out = 0
    for r, row in enumerate(mat):
        out |= (bin(row & vec).count("1") & 1) << r
    return out


def _mat_mul(a: list[int], b: list[int]) -> list[int]:
    # (a @ b) row r = XOR of rows of b selected by the bits of a's row r.
    out = []
    for row in a:
        acc, k = 0, 0
        while row:
            if row & 1:
                acc ^= b[k]
            row >>= 1
            k += 1
        out.append(acc)
    return out


@lru_cache(maxsize=None)
def _power(tap_list: tuple[int, ...], width: int, n: int) -> tuple[int, ...]:
    result = [1 << r for r in range(width)]
    base = _step_matrix(tap_list, width)
    while n:
        if n & 1:
            result = _mat_mul(base, result)
        base = _mat_mul(base, base)
        n >>= 1
    return tuple(result)


def power_rows(tap_list: tuple[int, ...], width: int, n: int) -> tuple[int, ...]:
    """n single shifts as a GF(2) matrix: row r is the mask of the state bits whose parity is new bit r."""
    return _power(tuple(tap_list), width, n)


def jump(tap_list: tuple[int, ...], width: int, state: int, n: int) -> int:
    """The state n single shifts after `state` (by GF(2) matrix power, so n may be huge)."""
    return _mat_vec(list(_power(tuple(tap_list), width, n)), state)


def seeds(tap_list: tuple[int, ...], width: int, seed: int, count: int, stride: int) -> tuple[int, ...]:
    """Start states of `count` generators: generator k starts k * stride shifts after `seed`."""
    step = list(_power(tuple(tap_list), width, stride))
    out, state = [], seed
    for _ in range(count):
        out.append(state)
        state = _mat_vec(step, state)
    return tuple(out)

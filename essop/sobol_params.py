"""Sobol direction numbers shared by every implementation (docs/spec.md section 4).

Source: S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better two-dimensional projections", SIAM J.
Sci. Comput. 30 (2008) 2635-2654; direction numbers file `new-joe-kuo-6.21201`
(https://web.maths.unsw.edu.au/~fkuo/sobol/). Its first dimension is implicit (every m_k = 1: the van der Corput
sequence in base 2); its first line is the second dimension:

    d  s  a  m_i
    2  1  0  1

(primitive polynomial x + 1 of degree s = 1, a = 0, initial m_1 = 1). The later m_k follow Bratley and Fox's
recurrence

    m_k = 2 a_1 m_(k-1) XOR 4 a_2 m_(k-2) XOR ... XOR 2**(s-1) a_(s-1) m_(k-s+1) XOR 2**s m_(k-s) XOR m_(k-s)

which for dimension 2 is m_k = 2 m_(k-1) XOR m_(k-1): 1, 3, 5, 15, 17, 51, 85, 255, ...

A q-bit generator uses q-bit direction words V_k = m_k * 2**(q - k), k = 1..q (column k of the generator
matrix, most significant bit first); point c of the sequence (Gray-code order, Antonov and Saleev) is

    R(c) = XOR over k with bit (k - 1) of gray(c) set of V_k,      gray(c) = c XOR (c >> 1),

for c in [0, 2**q), so R depends on c mod 2**q only. Dimension 1 is the x side, dimension 2 the delta side.
For c < 2**q these are the first 2**q points of PyTorch's unscrambled `SobolEngine(2)` truncated to q bits
(tests/golden/test_random_sources.py checks that; PyTorch uses the same file).

This module only holds data; the golden model (essop.golden.random_sources) and the RTL
(essop.hdl.random_sources) each build the points themselves.
"""
from __future__ import annotations

from functools import lru_cache

__all__ = ["JOE_KUO", "SIDE_DIMENSION", "MAX_BITS", "m_values", "direction_words", "element_word"]

#: new-joe-kuo-6.21201, dimensions used: d -> (s, a, (m_1, ..., m_s)). Dimension 1 is the implicit one.
JOE_KUO: dict[int, tuple[int, int, tuple[int, ...]]] = {
    1: (0, 0, ()),
    2: (1, 0, (1,)),
}
#: Which dimension each side of the array uses.
SIDE_DIMENSION = {"x": 1, "d": 2}
#: Longest direction word tabulated (EssopConfig.q is at most 16).
MAX_BITS = 32


def m_values(dimension: int, count: int) -> tuple[int, ...]:
    """m_1 .. m_count of a dimension (odd integers, m_k < 2**k)."""
    try:
        s, a, init = JOE_KUO[dimension]
    except KeyError:
        raise ValueError(f"no Sobol direction numbers for dimension {dimension!r}; "
                         f"dimensions {min(JOE_KUO)}..{max(JOE_KUO)} are tabulated") from None
    if not isinstance(count, int) or not 1 <= count <= MAX_BITS:
        raise ValueError(f"count must be an int in [1, {MAX_BITS}], not {count!r}")
    if s == 0:
        return (1,) * count
    m = list(init)
    while len(m) < count:
        k = len(m)          # computing m_(k+1) from m_(k+1-s) .. m_k (1-based)
        v = m[k - s] ^ (m[k - s] << s)
        for j in range(1, s):
            if (a >> (s - 1 - j)) & 1:
                v ^= m[k - j] << j
        m.append(v)
    return tuple(m[:count])


@lru_cache(maxsize=None)
def direction_words(dimension: int, q: int) -> tuple[int, ...]:
    """V_1 .. V_q as q-bit words: V_k = m_k * 2**(q - k)."""
    return tuple(mk << (q - k) for k, mk in enumerate(m_values(dimension, q), start=1))


def element_word(k: int, q: int) -> int:
    """Digital shift of per_element generator k: the q low bits of k in reverse order (the van der Corput
    point of k), so generators 0 .. 2**q - 1 get distinct shifts that differ in their high bits first;
    generator 0's is 0 (the shared generator's points)."""
    k %= 1 << q
    return int(format(k, f"0{q}b")[::-1], 2) if q else 0

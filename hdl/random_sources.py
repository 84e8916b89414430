"""Sobol random-number generator (spec section 4): a Gray-code counter and XORs of direction words.

One q-bit counter c counts enabled cycles (modulo 2**q); its Gray code g = c XOR (c >> 1) selects direction
words, and each dimension's point is the XOR of the words V_k whose bit (k - 1) of g is set. The words are
constants, so every output bit is the XOR of a fixed set of Gray-code bits (for dimension 1, the van der
Corput sequence, one bit each: the Gray code reversed) — no multiplier, no table, no state but the counter.
The LFSR source is essop.hdl.lfsr.
"""

from functools import reduce
from operator import xor

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int

__all__ = ["SobolGenerator"]


class SobolGenerator(wiring.Component):
    """Points of several Sobol dimensions from one Gray-code counter.

    ``directions``: one tuple of q direction words per dimension (V_1 .. V_q, each < 2**q; the configuration's
    ``sobol_directions_x``, ``sobol_directions_d``). ``o_point[d]`` is dimension d's point of the current
    count; ``en`` advances the count, ``restart`` clears it (and wins over ``en``). The count's reset value is 0.
    """

    def __init__(self, q, directions):
        check_int("q", q, 1, 32)
        if not isinstance(directions, tuple) or not directions:
            raise TypeError(f"directions must be a non-empty tuple of tuples, not {directions!r}")
        for words in directions:
            if not isinstance(words, tuple) or len(words) != q:
                raise ValueError(f"each dimension needs a tuple of q = {q} direction words, not {words!r}")
            for v in words:
                check_int("direction word", v, 0, (1 << q) - 1)
        self._q, self._directions = q, directions
        super().__init__({
            "en": In(1),
            "restart": In(1),
            "o_count": Out(q),
            "o_point": Out(q).array(len(directions)),
        })

    @property
    def q(self) -> int:
        return self._q

    @property
    def directions(self) -> tuple[tuple[int, ...], ...]:
        return self._directions

    @property
    def period(self) -> int:
        """Enabled cycles after which the points repeat: 2**q."""
        return 1 << self._q

    def elaborate(self, platform):
        q = self._q
        m = Module()
        count = Signal(q, name="count")
        with m.If(self.restart):
            m.d.sync += count.eq(0)
        with m.Elif(self.en):
            m.d.sync += count.eq(count + 1)
        gray = Signal(q, name="gray")
        m.d.comb += [gray.eq(count ^ (count >> 1)), self.o_count.eq(count)]
        for d, words in enumerate(self._directions):
            for j in range(q):
                # Output bit j: the parity of the Gray-code bits whose direction word has bit j set.
                terms = [gray[k] for k, v in enumerate(words) if v >> j & 1]
                m.d.comb += self.o_point[d][j].eq(reduce(xor, terms) if terms else Const(0, 1))
        return m

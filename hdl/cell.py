"""Comparator and array cells (spec section 5).

A comparator turns a q-bit magnitude into a bitstream: bit = R < a. A cell multiplies two bitstreams with an
AND gate and counts the product up, or down when the signs differ; there is no multiplier. The cheaper
``UpCell`` (EssopConfig.cell = 'upcount') only counts up: with one pair per group the pair's sign is the same in
every cycle, so it can be applied once, at read-out (essop.hdl.sign_readout).
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int

__all__ = ["Comparator", "Cell", "UpCell"]


class Comparator(wiring.Component):
    """o_bit = i_rand < i_mag (unsigned, q bits): a bitstream of density a / 2**q for uniform R."""

    def __init__(self, q):
        check_int("q", q, 1, 16)
        self._q = q
        super().__init__({"i_rand": In(q), "i_mag": In(q), "o_bit": Out(1)})

    @property
    def q(self) -> int:
        return self._q

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o_bit.eq(self.i_rand < self.i_mag)
        return m


class _Counter(wiring.Component):
    """What both cells share: the checked count width, the row-enable choice and the ports (signed with sign
    inputs for the up/down cell, unsigned without for the up-counting one)."""

    def __init__(self, count_width, row_enable, *, min_width, sign_inputs):
        check_int("count_width", count_width, min_width, 64)
        if not isinstance(row_enable, bool):
            raise TypeError(f"row_enable must be a bool, not {row_enable!r}")
        self._count_width = count_width
        self._row_enable = row_enable
        value = signed(count_width) if sign_inputs else count_width
        ports = {"en": In(1), "x": In(1), "d": In(1)}
        if sign_inputs:
            ports |= {"sign_x": In(1), "sign_d": In(1)}
        super().__init__(ports | {"shift": In(1), "shift_in": In(value), "count": Out(value)})

    @property
    def count_width(self) -> int:
        return self._count_width


class Cell(_Counter):
    """One signed up/down counter of `count_width` bits.

    On a clock edge with ``en``: count += (x AND d), negated when ``sign_x XOR sign_d``. With ``shift`` the
    counter instead loads ``shift_in`` (the next row's count, or 0 at the bottom of the array): the array
    reads its results out through row 0 and is left cleared after the last row. ``shift`` takes precedence.
    The counter never wraps as long as fewer than 2**(count_width - 1) products are counted; the array
    sizes count_width from BL * acc_depth for that.

    ``row_enable`` (EssopConfig.clock_gating): ``en`` is instead the enable of the whole row, ``shift OR (en AND
    d)``, and ``d`` is not used: the register updates exactly when ``en`` is high, so every flip-flop of a
    row shares that one enable and synthesis can gate the row's clock with it. Same counts.
    """

    def __init__(self, count_width, *, row_enable=False):
        super().__init__(count_width, row_enable, min_width=2, sign_inputs=True)

    def elaborate(self, platform):
        m = Module()
        count = Signal(signed(self._count_width))
        down = self.sign_x ^ self.sign_d
        if self._row_enable:
            # No enable of the cell's own (x AND d) for synthesis to find: the row's is the only one.
            with m.If(self.en):
                step = Mux(self.x, Mux(down, -1, 1), 0)
                m.d.sync += count.eq(Mux(self.shift, self.shift_in, count + step))
            m.d.comb += self.count.eq(count)
            return m
        hit = self.x & self.d
        with m.If(self.shift):
            m.d.sync += count.eq(self.shift_in)
        with m.Elif(self.en & hit):
            m.d.sync += count.eq(Mux(down, count - 1, count + 1))
        m.d.comb += self.count.eq(count)
        return m


class UpCell(_Counter):
    """One unsigned up-counter of `count_width` bits: on a clock edge with ``en``, count += x AND d. With
    ``shift`` it instead loads ``shift_in`` (read-out through row 0, as Cell). It never wraps as long as fewer
    than 2**count_width products are counted (EssopConfig.cell_count_width holds BL). ``row_enable``: as
    Cell's (``en`` is the row's enable, ``d`` unused)."""

    def __init__(self, count_width, *, row_enable=False):
        super().__init__(count_width, row_enable, min_width=1, sign_inputs=False)

    def elaborate(self, platform):
        m = Module()
        count = Signal(self._count_width)
        if self._row_enable:
            with m.If(self.en):
                m.d.sync += count.eq(Mux(self.shift, self.shift_in, count + self.x))
            m.d.comb += self.count.eq(count)
            return m
        with m.If(self.shift):
            m.d.sync += count.eq(self.shift_in)
        with m.Elif(self.en & self.x & self.d):
            m.d.sync += count.eq(count + 1)
        m.d.comb += self.count.eq(count)
        return m

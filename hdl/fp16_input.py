"""FP16 blocks of the input stage (input_stage.py; spec sections 1-3): decode, element exponent, vector
exponent max, magnitude shifter.

All combinational, and no floating-point arithmetic: the exponent of a vector is a max over small integers,
and the q-bit magnitude is the FP16 significand moved by a barrel shifter.

(No `from __future__ import annotations` in the gateware files: Amaranth reads class annotations such as
`i_bits: In(WIDTH)` as the component's signature, and postponed annotations would hide them.)
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int
from essop.config import EXP_MIN, EXP_PORT_WIDTH
from essop.fp16_format import (EXP_FIELD_MAX, EXP_OFFSET, EXP_SHIFT, EXP_WIDTH, FRAC_WIDTH, SIG_WIDTH, SIGN_SHIFT,
                               WIDTH)

__all__ = ["Fp16Decode", "ExponentMax", "MagnitudeShift", "Fp16PartialExponent", "Fp16VectorInput",
           "bit_length", "max_depth", "partial_count"]


def bit_length(m: Module, value, name: str) -> Signal:
    """bitlen(value) as a priority encoder (a leading-one detector); 0 for value == 0."""
    out = Signal(range(len(value) + 1), name=name)
    # Later assignments win in Amaranth, so the highest set bit decides.
    for k in range(len(value)):
        with m.If(value[k]):
            m.d.comb += out.eq(k + 1)
    return out


def max_depth(count: int) -> int:
    """Comparator levels of the balanced max tree over `count` values: ceil(log2 count)."""
    return (count - 1).bit_length()


def partial_count(count: int, levels: int) -> int:
    """Values left after `levels` levels of the pairwise max tree over `count` values: ceil(count / 2**levels)."""
    return -(-count // (1 << levels))


def _max_levels(m: Module, level: list, levels, prefix: str) -> list:
    """`levels` levels (None: all) of the balanced pairwise max tree. Level k's value j is the max of the
    contiguous inputs j * 2**k .. (j + 1) * 2**k - 1, so a tree cut after any level and finished by another
    tree over the partial maxima gives the same max."""
    depth = 0
    while len(level) > 1 and (levels is None or depth < levels):
        nxt = []
        for k in range(0, len(level) - 1, 2):
            a, b = level[k], level[k + 1]
            v = Signal(signed(EXP_PORT_WIDTH), name=f"{prefix}_{depth}_{k // 2}")
            m.d.comb += v.eq(Mux(a > b, a, b))
            nxt.append(v)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level


class Fp16Decode(wiring.Component):
    """One binary16 pattern: sign, significand M, effective exponent e_eff, finite, element exponent E(v).

    Non-finite patterns give M = 0 and E(v) = EXP_MIN, so they drop out of the vector max.
    """

    i_bits: In(WIDTH)
    o_sign: Out(1)
    o_m: Out(SIG_WIDTH)
    o_e_eff: Out(EXP_WIDTH)
    o_finite: Out(1)
    o_exp: Out(signed(EXP_PORT_WIDTH))

    def elaborate(self, platform):
        m = Module()
        e = self.i_bits[EXP_SHIFT:SIGN_SHIFT]
        f = self.i_bits[:FRAC_WIDTH]
        finite = e != EXP_FIELD_MAX
        normal = e != 0
        sub_len = bit_length(m, f, "sub_len")
        m.d.comb += [
            self.o_sign.eq(self.i_bits[SIGN_SHIFT]),
            self.o_finite.eq(finite),
            self.o_m.eq(Mux(finite, Mux(normal, Cat(f, Const(1, 1)), f), 0)),
            self.o_e_eff.eq(Mux(normal, e, 1)),
            # bitlen(M) + e_eff - 25: 11 + e - 25 for normals, bitlen(f) + 1 - 25 for subnormals and zero.
            self.o_exp.eq(Mux(finite,
                              Mux(normal, e - (EXP_OFFSET - SIG_WIDTH), sub_len - (EXP_OFFSET - 1)),
                              EXP_MIN)),
        ]
        return m


class ExponentMax(wiring.Component):
    """Max of `count` signed exponents (packed EXP_PORT_WIDTH bits each), a balanced comparator tree."""

    def __init__(self, count):
        check_int("count", count, 1)
        self._count = count
        super().__init__({
            "i_exps": In(EXP_PORT_WIDTH * count),
            "o_max": Out(signed(EXP_PORT_WIDTH)),
        })

    @property
    def count(self) -> int:
        return self._count

    @property
    def depth(self) -> int:
        """Comparator levels on the longest path."""
        return max_depth(self._count)

    def elaborate(self, platform):
        m = Module()
        level = [self.i_exps.word_select(k, EXP_PORT_WIDTH).as_signed() for k in range(self._count)]
        m.d.comb += self.o_max.eq(_max_levels(m, level, None, "max")[0])
        return m


class MagnitudeShift(wiring.Component):
    """a = min(floor(M * 2**(e_eff - 25 + q - E)), 2**q - 1) for one element (spec section 3).

    Saturation is decided from exponents alone — M * 2**sh >= 2**q exactly when M != 0 and E(v) > E — so the
    shifter itself only ever moves M right of the q-bit window's top, never needs a wide left shift.
    """

    def __init__(self, q):
        check_int("q", q, 1, 16)
        self._q = q
        super().__init__({
            "i_m": In(SIG_WIDTH),
            "i_e_eff": In(EXP_WIDTH),
            "i_elem_exp": In(signed(EXP_PORT_WIDTH)),
            "i_finite": In(1),
            "i_exp": In(signed(EXP_PORT_WIDTH)),
            "o_mag": Out(q),
            "o_saturated": Out(1),
        })

    @property
    def q(self) -> int:
        return self._q

    def elaborate(self, platform):
        m = Module()
        q = self._q
        # Right shift of (M << q) that lands M * 2**sh in the q-bit window: t = q - sh = E + 25 - e_eff.
        t = Signal(signed(EXP_PORT_WIDTH + 2))
        m.d.comb += t.eq(self.i_exp + EXP_OFFSET - self.i_e_eff)
        max_t = q + SIG_WIDTH           # M << q >> max_t is 0 for every M
        amount = Signal(range(max_t + 1))
        m.d.comb += amount.eq(Mux(t > max_t, max_t, t[:len(amount)]))
        shifted = Signal(q + SIG_WIDTH)
        m.d.comb += shifted.eq(Cat(Const(0, q), self.i_m) >> amount)
        saturated = Signal()
        m.d.comb += saturated.eq(self.i_finite & (self.i_m != 0) & (self.i_elem_exp > self.i_exp))
        # t < 0 with no saturation only happens for M == 0 (or non-finite), whose magnitude is 0.
        m.d.comb += [
            self.o_saturated.eq(saturated),
            self.o_mag.eq(Mux(saturated, (1 << q) - 1,
                              Mux(self.i_finite & (t >= 0), shifted[:q], 0))),
        ]
        return m


class Fp16PartialExponent(wiring.Component):
    """Decoders and the first `levels` levels of the exponent max tree over `count` FP16 patterns.

    ``o_partial`` packs `partial_count` signed maxima (EXP_PORT_WIDTH bits each), value j the max of the
    element exponents j * 2**levels .. (j + 1) * 2**levels - 1; ``ExponentMax(partial_count)`` over them is
    the vector exponent E. The input stage registers the partial maxima so that decoders and the whole tree
    are not one combinational path from its input ports.
    """

    def __init__(self, count, levels):
        check_int("count", count, 1)
        check_int("levels", levels, 0)
        self._count, self._levels = count, levels
        super().__init__({
            "i_bits": In(WIDTH * count),
            "o_partial": Out(EXP_PORT_WIDTH * self.partial_count),
        })

    @property
    def count(self) -> int:
        return self._count

    @property
    def levels(self) -> int:
        return self._levels

    @property
    def partial_count(self) -> int:
        return partial_count(self._count, self._levels)

    def elaborate(self, platform):
        m = Module()
        exps = []
        for j in range(self._count):
            dec = Fp16Decode()
            m.submodules[f"decode_{j}"] = dec
            m.d.comb += dec.i_bits.eq(self.i_bits.word_select(j, WIDTH))
            exps.append(dec.o_exp)
        m.d.comb += self.o_partial.eq(Cat(_max_levels(m, exps, self._levels, "part")))
        return m


class Fp16VectorInput(wiring.Component):
    """A vector of `count` FP16 patterns to q-bit magnitudes, signs and non-finite bits against the given
    exponent ``i_exp`` (the input stage finds per_pair exponents a register stage earlier, with
    `Fp16PartialExponent` and `ExponentMax`). ``o_saturated`` ORs every element's clamp.
    """

    def __init__(self, count, q):
        check_int("count", count, 1)
        check_int("q", q, 1, 16)
        self._count, self._q = count, q
        super().__init__({
            "i_bits": In(WIDTH * count),
            "i_exp": In(signed(EXP_PORT_WIDTH)),
            "o_mag": Out(q * count),
            "o_sign": Out(count),
            "o_nonfinite": Out(count),
            "o_saturated": Out(1),
        })

    @property
    def count(self) -> int:
        return self._count

    @property
    def q(self) -> int:
        return self._q

    def elaborate(self, platform):
        m = Module()
        n, q = self._count, self._q
        saturated = []
        for j in range(n):
            dec = Fp16Decode()
            sh = MagnitudeShift(q)
            m.submodules[f"decode_{j}"] = dec
            m.submodules[f"shift_{j}"] = sh
            m.d.comb += [
                dec.i_bits.eq(self.i_bits.word_select(j, WIDTH)),
                sh.i_m.eq(dec.o_m),
                sh.i_e_eff.eq(dec.o_e_eff),
                sh.i_elem_exp.eq(dec.o_exp),
                sh.i_finite.eq(dec.o_finite),
                sh.i_exp.eq(self.i_exp),
                self.o_mag.word_select(j, q).eq(sh.o_mag),
                self.o_sign[j].eq(dec.o_sign),
                self.o_nonfinite[j].eq(~dec.o_finite),
            ]
            saturated.append(sh.o_saturated)
        m.d.comb += self.o_saturated.eq(Cat(saturated).any())
        return m

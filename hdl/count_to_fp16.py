"""Signed count times 2**E_out to IEEE binary16 (spec section 7).

A leading-one detector finds the value's binade, one barrel shifter aligns the count to the 11-bit
significand (or to the subnormal quantum 2**-24), and an incrementer rounds to nearest, ties to even. The
result is packed as ((biased_exponent - 1) << 10) + significand_with_hidden_bit, so a carry out of rounding
bumps the exponent by itself, a subnormal rounding up to 1024 becomes the smallest normal, and a normal
rounding up past 65504 lands exactly on the Inf pattern.

The conversion is two blocks, so that the array can put a register between them (its output stage):
`CountNormalise` (magnitude, leading-one detector, exponent arithmetic, shift amount) and `NormalisedToFp16`
(barrel shifter, rounding, packing). `CountToFp16` is the two back to back.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int
from essop.config import OUT_EXP_WIDTH
from essop.fp16_format import BIAS as _BIAS, EXP_FIELD_MAX as _EMAX_BIASED, EXP_WIDTH, FRAC_WIDTH as _FRAC
from essop.fp16_format import INF16, NAN16, SIGN_SHIFT, WIDTH
from essop.hdl.fp16_input import bit_length

__all__ = ["CountNormalise", "NormalisedToFp16", "CountToFp16", "normalised_layout"]


def _guard_bits(count_width):
    # Fraction bits kept below the significand's last place: every bit of |count| fits below it.
    return count_width + 1


def _max_shift(count_width):
    # |count| is pre-shifted left by _FRAC (a left shift becomes a smaller right shift); past this amount
    # every bit lies below the guard bit and only the sticky bit remains.
    return _guard_bits(count_width) + _FRAC


def normalised_layout(count_width):
    """What CountNormalise hands to NormalisedToFp16 (the array registers it between the two)."""
    return data.StructLayout({
        "mag": count_width,                          # |count|
        "neg": 1,                                    # count < 0: the result's sign
        "amount": range(_max_shift(count_width) + 1),  # right shift of (mag << _FRAC) onto the last place
        "e_field": EXP_WIDTH,                        # biased exponent of the result's binade, 1..30
        "zero": 1,
        "overflow": 1,                               # binade at or past 2**16: Inf
        "poison": 1,
    })


class _CountConverter(wiring.Component):
    """A converter block for signed counts of ``count_width`` bits (2 to 64: at least a sign and one magnitude
    bit); a subclass names its ports in ``ports(count_width)``."""

    def __init__(self, count_width):
        check_int("count_width", count_width, 2, 64)
        self._count_width = count_width
        super().__init__(self.ports(count_width))

    def ports(self, count_width) -> dict:
        raise NotImplementedError

    @property
    def count_width(self) -> int:
        return self._count_width


class CountNormalise(_CountConverter):
    """First half of CountToFp16: magnitude, leading-one position, result exponent, shift amount."""

    def ports(self, count_width):
        return {
            "i_count": In(signed(count_width)),
            "i_exp": In(signed(OUT_EXP_WIDTH)),
            "i_poison": In(1),
            "o_norm": Out(normalised_layout(count_width)),
        }

    def elaborate(self, platform):
        m = Module()
        cw = self._count_width
        o = self.o_norm
        neg = self.i_count[-1]
        mag = Signal(cw)
        m.d.comb += mag.eq(Mux(neg, -self.i_count, self.i_count))
        lead = bit_length(m, mag, "lead")                     # p + 1, p = leading-one position
        # The exponent terms depend on E_out only; in the array E_out is a register, so they are ready long
        # before the leading-one detector and only a comparator and a mux follow it.
        ew = OUT_EXP_WIDTH + max(cw.bit_length(), 5) + 2
        p = Signal(signed(ew))
        m.d.comb += p.eq(lead - 1)
        sub_shift = Signal(signed(ew))                         # the 2**-24 quantum's place: -14 - E_out
        inf_p = Signal(signed(ew))                             # the first p whose binade is past 65504
        m.d.comb += [
            sub_shift.eq(1 - _BIAS - self.i_exp),
            inf_p.eq(_EMAX_BIASED - _BIAS - self.i_exp),
        ]
        # Normal (binade at or above 2**-14) exactly when p + E_out + 15 >= 1, i.e. p >= sub_shift; the right
        # shift of (mag << 10) onto the last place is then p, else sub_shift.
        normal = p >= sub_shift
        rshift = Mux(normal, p, sub_shift)
        max_shift = _max_shift(cw)
        m.d.comb += [
            o.mag.eq(mag),
            o.neg.eq(neg),
            o.amount.eq(Mux(rshift < 0, 0, Mux(rshift > max_shift, max_shift, rshift))),
            o.e_field.eq(Mux(normal, p + self.i_exp + _BIAS, 1)),
            o.zero.eq(mag == 0),
            o.overflow.eq(p >= inf_p),
            o.poison.eq(self.i_poison),
        ]
        return m


class NormalisedToFp16(_CountConverter):
    """Second half of CountToFp16: align, round to nearest even, pack; specials."""

    def ports(self, count_width):
        return {
            "i_norm": In(normalised_layout(count_width)),
            "o_bits": Out(WIDTH),
        }

    def elaborate(self, platform):
        m = Module()
        cw = self._count_width
        i = self.i_norm
        guard_bits = _guard_bits(cw)
        aligned = Signal(cw + _FRAC + guard_bits)
        m.d.comb += aligned.eq(Cat(Const(0, _FRAC + guard_bits), i.mag) >> i.amount)
        kept = aligned[guard_bits:]
        guard = aligned[guard_bits - 1]
        sticky = aligned[:guard_bits - 1].any()
        round_up = guard & (sticky | kept[0])
        sig = Signal(_FRAC + 2)                                # at most 2048 after rounding
        m.d.comb += sig.eq(kept + round_up)
        packed = Signal(WIDTH)
        m.d.comb += packed.eq(Cat(Const(0, _FRAC), i.e_field - 1) + sig)
        with m.If(i.poison):
            m.d.comb += self.o_bits.eq(NAN16)
        with m.Elif(i.zero):
            m.d.comb += self.o_bits.eq(0)
        with m.Elif(i.overflow | (packed >= INF16)):
            m.d.comb += self.o_bits.eq(Cat(Const(INF16, SIGN_SHIFT), i.neg))
        with m.Else():
            m.d.comb += self.o_bits.eq(Cat(packed[:SIGN_SHIFT], i.neg))
        return m


class CountToFp16(_CountConverter):
    """o_bits = fp16(i_count * 2**i_exp), RNE; 0x7E00 when ``i_poison``; +0 for a zero count; a zero that
    underflows keeps the count's sign. Combinational: CountNormalise then NormalisedToFp16."""

    def ports(self, count_width):
        return {
            "i_count": In(signed(count_width)),
            "i_exp": In(signed(OUT_EXP_WIDTH)),
            "i_poison": In(1),
            "o_bits": Out(WIDTH),
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.normalise = norm = CountNormalise(self._count_width)
        m.submodules.round = rnd = NormalisedToFp16(self._count_width)
        m.d.comb += [
            norm.i_count.eq(self.i_count),
            norm.i_exp.eq(self.i_exp),
            norm.i_poison.eq(self.i_poison),
            rnd.i_norm.eq(norm.o_norm),
            self.o_bits.eq(rnd.o_bits),
        ]
        return m

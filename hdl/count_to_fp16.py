"""Signed count times 2**E_out to IEEE binary16 (spec section 7).

A leading-one detector finds the value's binade, one barrel shifter aligns the count to the 11-bit
significand (or to the subnormal quantum 2**-24), and an incrementer rounds to nearest, ties to even. The
result is packed as ((biased_exponent - 1) << 10) + significand_with_hidden_bit, so a carry out of rounding
bumps the exponent by itself, a subnormal rounding up to 1024 becomes the smallest normal, and a normal
rounding up past 65504 lands exactly on the Inf pattern.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.hdl._params import check_int
from essop.hdl.fp16_input import bit_length

__all__ = ["CountToFp16", "OUT_EXP_WIDTH", "NAN16", "INF16"]

#: Width of the signed output exponent E_out (o_exp, spec section 9).
OUT_EXP_WIDTH = 8
NAN16 = 0x7E00
INF16 = 0x7C00
_BIAS = 15
_FRAC = 10
_EMAX_BIASED = 31


class CountToFp16(wiring.Component):
    """o_bits = fp16(i_count * 2**i_exp), RNE; 0x7E00 when ``i_poison``; +0 for a zero count; a zero that
    underflows keeps the count's sign."""

    def __init__(self, count_width):
        check_int("count_width", count_width, 2, 64)
        self._count_width = count_width
        super().__init__({
            "i_count": In(signed(count_width)),
            "i_exp": In(signed(OUT_EXP_WIDTH)),
            "i_poison": In(1),
            "o_bits": Out(16),
        })

    @property
    def count_width(self) -> int:
        return self._count_width

    def elaborate(self, platform):
        m = Module()
        cw = self._count_width
        neg = self.i_count[-1]
        mag = Signal(cw)
        m.d.comb += mag.eq(Mux(neg, -self.i_count, self.i_count))
        lead = bit_length(m, mag, "lead")                     # p + 1, p = leading-one position
        # Exponent arithmetic, wide enough for p + E_out + bias over every input.
        ew = OUT_EXP_WIDTH + max(cw.bit_length(), 5) + 2
        biased = Signal(signed(ew))                            # p + E_out + 15
        m.d.comb += biased.eq(lead - 1 + self.i_exp + _BIAS)
        normal = biased >= 1
        overflow = biased >= _EMAX_BIASED
        e_field = Signal(signed(ew))                           # biased exponent of the result, >= 1
        m.d.comb += e_field.eq(Mux(normal, biased, 1))
        # Right shift of mag onto the significand's last place: e_field - 15 - 10 - E_out; >= -10 always.
        guard_bits = cw + 1            # fraction bits kept below the last place: every bit of mag fits
        pre = _FRAC                    # mag is pre-shifted left by this, so a left shift is a smaller right shift
        rshift = Signal(signed(ew))
        m.d.comb += rshift.eq(e_field - (_BIAS + _FRAC) - self.i_exp + pre)
        max_shift = guard_bits + pre   # past this, everything is below the guard bit (sticky only)
        amount = Signal(range(max_shift + 1))
        m.d.comb += amount.eq(Mux(rshift < 0, 0, Mux(rshift > max_shift, max_shift, rshift[:len(amount)])))
        aligned = Signal(cw + pre + guard_bits)
        m.d.comb += aligned.eq(Cat(Const(0, pre + guard_bits), mag) >> amount)
        kept = aligned[guard_bits:]
        guard = aligned[guard_bits - 1]
        sticky = aligned[:guard_bits - 1].any()
        round_up = guard & (sticky | kept[0])
        sig = Signal(_FRAC + 2)                                # at most 2048 after rounding
        m.d.comb += sig.eq(kept + round_up)
        packed = Signal(16)
        m.d.comb += packed.eq(Cat(Const(0, _FRAC), e_field[:5] - 1) + sig)
        with m.If(self.i_poison):
            m.d.comb += self.o_bits.eq(NAN16)
        with m.Elif(mag == 0):
            m.d.comb += self.o_bits.eq(0)
        with m.Elif(overflow | (packed >= INF16)):
            m.d.comb += self.o_bits.eq(Cat(Const(INF16, 15), neg))
        with m.Else():
            m.d.comb += self.o_bits.eq(Cat(packed[:15], neg))
        return m

"""IEEE binary16 multiplier with a configurable pipeline: the FP16 baseline ESSOP is compared against.

``Fp16Multiplier(stages)`` computes ``p = a * b`` correctly rounded (round to nearest, ties to even) for every
pair of binary16 bit patterns: subnormal inputs and outputs, signed zeros, infinities. Every NaN result is the
canonical quiet NaN ``0x7E00`` (NaN payloads and signs are not propagated; tests compare NaN-ness for NaN
results and bits for all others). Results that round past 65504 become +-Inf; results below half the smallest
subnormal become a zero with the product's sign.

The datapath is six steps; a pipeline register can sit after any of them (``CUT_ORDER`` says which cuts a
given ``stages`` uses, most timing-critical first). ``stages = 0`` is purely combinational. A ``valid`` bit
travels with the data; the pipeline never stalls (a new operand pair may enter every cycle).

Datapath (value of a finite input: ``M * 2**(e_eff - 25)``, ``M`` the 11-bit significand):

1. decode: significands, effective exponents, special classes, ``esum = e_eff_a + e_eff_b``;
2. partial products: ``M_a * M_b[0:6]`` and ``M_a * M_b[6:11]``;
3. sum: the exact 22-bit product ``P``;
4. leading-one detector: ``msb``, biased result exponent ``e = msb + esum - 35`` and the right shift ``sh``
   that leaves 11 significant bits (normal) or aligns to 2**-24 (subnormal, ``e < 1``);
5. shift: ``P >> sh`` with guard and sticky bits;
6. round and pack: ``(max(e - 1, 0) << 10) + significand + round_up`` — a rounding carry moves the exponent,
   a subnormal rounding up to 1024 becomes the smallest normal — and the special cases.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int
from essop.fp16_format import EXP_FIELD_MAX, EXP_SHIFT, FRAC_WIDTH, INF16, NAN16, SIGN_SHIFT, WIDTH

__all__ = ["Fp16Multiplier", "CUT_ORDER", "MAX_STAGES", "NAN16", "INF16"]

#: Steps after which a pipeline register may sit, in the order ``stages`` adds them: the output first (a
#: registered result), then splitting the multiplier from normalisation, and so on.
CUT_ORDER = (6, 2, 4, 1, 3, 5)
MAX_STAGES = len(CUT_ORDER)

# Bits of the low partial product: M_b is split into [0:6] and [6:11].
_SPLIT = 6


def _check_stages(stages) -> int:
    check_int("stages", stages, 0, MAX_STAGES)
    return stages


class Fp16Multiplier(wiring.Component):
    """binary16 x binary16 -> binary16, RNE, with ``stages`` pipeline registers (latency ``stages`` cycles)."""

    i_valid: In(1)
    i_a: In(WIDTH)
    i_b: In(WIDTH)
    o_valid: Out(1)
    o_p: Out(WIDTH)

    def __init__(self, stages: int = 2):
        self._stages = _check_stages(stages)
        super().__init__()

    @property
    def stages(self) -> int:
        return self._stages

    @property
    def latency(self) -> int:
        """Cycles from ``i_valid`` to the matching ``o_valid`` (0: combinational)."""
        return self._stages

    @property
    def cuts(self) -> tuple[int, ...]:
        """Steps (1..6) followed by a pipeline register, in datapath order."""
        return tuple(sorted(CUT_ORDER[:self._stages]))

    def elaborate(self, platform):
        m = Module()
        cuts = set(self.cuts)

        def cut(step: int, valid, **values):
            """Pass the step's results on, through a register when a pipeline cut sits after ``step``."""
            if step not in cuts:
                return valid, values
            valid_r = Signal(name=f"valid_s{step}")
            m.d.sync += valid_r.eq(valid)
            out = {}
            for name, value in values.items():
                # Data registers need no reset: ``valid`` says when they mean something.
                reg = Signal(value.shape(), name=f"{name}_s{step}", reset_less=True)
                m.d.sync += reg.eq(value)
                out[name] = reg
            return valid_r, out

        # 1. decode
        def unpack(v):
            exp, frac = v[EXP_SHIFT:SIGN_SHIFT], v[:FRAC_WIDTH]
            is_max, is_min = exp == EXP_FIELD_MAX, exp == 0
            sig = Mux(is_min, frac, Cat(frac, Const(1, 1)))
            e_eff = Mux(is_min, 1, exp)
            return sig, e_eff, is_max & (frac != 0), is_max & (frac == 0), is_min & (frac == 0)

        ma, ea, a_nan, a_inf, a_zero = unpack(self.i_a)
        mb, eb, b_nan, b_inf, b_zero = unpack(self.i_b)
        valid, v = cut(
            1, self.i_valid,
            ma=ma, mb=mb,
            esum=(ea + eb)[:6],
            sign=self.i_a[SIGN_SHIFT] ^ self.i_b[SIGN_SHIFT],
            nan=a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero),
            inf=a_inf | b_inf,
            zero=a_zero | b_zero,
        )
        flags = dict(esum=v["esum"], sign=v["sign"], nan=v["nan"], inf=v["inf"], zero=v["zero"])

        # 2. partial products
        valid, v2 = cut(2, valid,
                        pl=(v["ma"] * v["mb"][:_SPLIT])[:11 + _SPLIT],
                        ph=(v["ma"] * v["mb"][_SPLIT:])[:22 - _SPLIT],
                        **flags)
        flags = {k: v2[k] for k in flags}

        # 3. the exact product
        valid, v3 = cut(3, valid, prod=(v2["pl"] + (v2["ph"] << _SPLIT))[:22], **flags)
        flags = {k: v3[k] for k in flags}
        prod = v3["prod"]

        # 4. leading one, exponent, shift amount
        msb = Signal(5)
        for k in range(22):  # the last assignment wins: the highest set bit
            with m.If(prod[k]):
                m.d.comb += msb.eq(k)
        e = Signal(range(-35, 64))
        m.d.comb += e.eq(msb + flags["esum"] - 35)
        sub = e < 1
        # sh is in [0, 24]: normal products have msb >= 10; subnormal ones have esum >= 2.
        sh = Mux(sub, 26 - flags["esum"], msb - 10)[:5]
        eadj = Mux(sub, 0, e - 1)[:6]
        valid, v4 = cut(4, valid, prod=prod, sh=sh, eadj=eadj,
                        sign=flags["sign"], nan=flags["nan"], inf=flags["inf"], zero=flags["zero"])

        # 5. align, guard and sticky
        pext = Cat(Const(0, 1), v4["prod"])  # one bit below P, so the guard lands in bit 0 after the shift
        shifted = (pext >> v4["sh"])[:12]
        below = Cat(*(v4["sh"] > k for k in range(23)))  # bits of pext under position sh
        valid, v5 = cut(5, valid,
                        sig=shifted[1:12], guard=shifted[0], sticky=(pext & below).any(),
                        eadj=v4["eadj"], sign=v4["sign"], nan=v4["nan"], inf=v4["inf"], zero=v4["zero"])

        # 6. round to nearest even and pack
        round_up = v5["guard"] & (v5["sticky"] | v5["sig"][0])
        mag = Signal(17)
        m.d.comb += mag.eq((v5["eadj"] << 10) + v5["sig"] + round_up)
        result = Signal(WIDTH)
        with m.If(v5["nan"]):
            m.d.comb += result.eq(NAN16)
        with m.Elif(v5["inf"] | (~v5["zero"] & (mag >= INF16))):
            m.d.comb += result.eq(Cat(Const(INF16, SIGN_SHIFT), v5["sign"]))
        with m.Elif(v5["zero"]):
            m.d.comb += result.eq(Cat(Const(0, SIGN_SHIFT), v5["sign"]))
        with m.Else():
            m.d.comb += result.eq(Cat(mag[:SIGN_SHIFT], v5["sign"]))
        valid, v6 = cut(6, valid, p=result)

        m.d.comb += [self.o_valid.eq(valid), self.o_p.eq(v6["p"])]
        return m

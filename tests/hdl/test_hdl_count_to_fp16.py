# amaranth: UnusedElaboratable=no
"""CountToFp16 (= CountNormalise then NormalisedToFp16, the halves the array registers between) equals golden
count_to_fp16 — and NumPy's correctly rounded float16 — for every count of a
small counter over every exponent that matters, and for edge and random counts of the widest counter."""
import numpy as np
import pytest
from amaranth.hdl import Cat, Elaboratable, Module, Signal

from essop.config import MAX_ACC_DEPTH, OUT_EXP_WIDTH, EssopConfig
from essop.fp16_format import NAN16
from essop.golden import fp16 as ref
from essop.hdl.count_to_fp16 import CountNormalise, CountToFp16, NormalisedToFp16
from hdl_harness import pack, simulate, unpack

SEED = 20261126
BANK = 256
EXP_LO, EXP_HI = -(1 << (OUT_EXP_WIDTH - 1)), (1 << (OUT_EXP_WIDTH - 1)) - 1


class _Bank(Elaboratable):
    def __init__(self, count_width, bank):
        self.cw, self.bank = count_width, bank
        self.counts = Signal(count_width * self.bank)
        self.exps = Signal(OUT_EXP_WIDTH * self.bank)
        self.poison = Signal(self.bank)
        self.bits = Signal(16 * self.bank)

    def elaborate(self, platform):
        m = Module()
        outs = []
        for j in range(self.bank):
            m.submodules[f"conv_{j}"] = conv = CountToFp16(self.cw)
            m.d.comb += [
                conv.i_count.eq(self.counts.word_select(j, self.cw)),
                conv.i_exp.eq(self.exps.word_select(j, OUT_EXP_WIDTH)),
                conv.i_poison.eq(self.poison[j]),
            ]
            outs.append(conv.o_bits)
        m.d.comb += self.bits.eq(Cat(outs))
        return m


def rtl_convert(count_width, counts, exps, poison=None, bank=BANK):
    dut = _Bank(count_width, bank)
    poison = np.zeros(len(counts), dtype=int) if poison is None else poison
    out = []

    async def bench(ctx):
        for s in range(0, len(counts), bank):
            pad = bank - len(counts[s:s + bank])
            ctx.set(dut.counts, pack(list(counts[s:s + bank]) + [0] * pad, count_width))
            ctx.set(dut.exps, pack(list(exps[s:s + bank]) + [0] * pad, OUT_EXP_WIDTH))
            ctx.set(dut.poison, pack(list(poison[s:s + bank]) + [0] * pad, 1))
            out.extend(unpack(ctx.get(dut.bits), 16, bank))

    simulate(dut, bench, clock=None)
    return np.array(out[:len(counts)], dtype=np.uint16)


def numpy_fp16(counts, exps):
    """Independent reference: C * 2**E is exact in float64 here, float16 rounds it correctly (RNE)."""
    with np.errstate(over="ignore"):
        return (counts.astype(np.float64) * np.exp2(exps.astype(np.float64))).astype(np.float16).view(np.uint16)


def test_every_count_of_an_8_bit_counter():
    cw = 8
    c = np.arange(-(1 << (cw - 1)), 1 << (cw - 1))
    # Below -40 every count underflows to a signed zero, above 20 every nonzero count is Inf; the port's
    # extremes are added to show the exponent arithmetic does not wrap.
    e = np.array(list(range(-40, 21)) + [EXP_LO, EXP_LO + 1, EXP_HI - 1, EXP_HI])
    counts, exps = (v.ravel() for v in np.meshgrid(c, e))
    got = rtl_convert(cw, counts, exps)
    assert np.array_equal(got, ref.count_to_fp16(counts, exps))
    assert np.array_equal(got, numpy_fp16(counts, exps))


def test_widest_counter_edges_and_random():
    cw = EssopConfig(bl=1024, acc_depth=MAX_ACC_DEPTH, scaling="block").count_width
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    top = (1 << (cw - 1)) - 1
    edges = {0, 1, 2, 3, top, 2047, 2048, 2049, 2050, 4095, 4097, 6143, 65504, 65519, 65520, 65535}
    edges |= {(1 << k) + d for k in range(cw - 1) for d in (-1, 0, 1) if 0 <= (1 << k) + d <= top}
    edges = np.array(sorted(edges))
    edges = np.concatenate([edges, -edges, [-(top + 1)]])
    # Mantissa-boundary counts (11 significant bits then a tie or just past it) at every scale.
    ties = np.array([(((1 << 11) | int(f)) << s) | (1 << (s - 1)) | int(extra)
                     for s in range(1, cw - 13) for f in rng.integers(0, 1 << 11, 3) for extra in (0, 1)])
    rand = rng.integers(-(top + 1), top + 1, 3 * BANK) >> rng.integers(0, cw, 3 * BANK)
    counts = np.concatenate([edges, ties, -ties, rand])
    # Exponents around the interesting band for each count's size, plus uniform ones.
    lead = np.array([int(abs(int(v))).bit_length() for v in counts])
    exps = np.clip(-lead + rng.integers(-30, 22, len(counts)), EXP_LO, EXP_HI)
    exps[::7] = rng.integers(EXP_LO, EXP_HI + 1, len(exps[::7]))
    got = rtl_convert(cw, counts, exps)
    assert np.array_equal(got, ref.count_to_fp16(counts, exps))
    assert np.array_equal(got, numpy_fp16(counts, exps))


def test_poison_gives_canonical_nan():
    counts = np.array([0, 1, -1, 100, -100, 127, -128] * 4)
    exps = np.array([0] * 7 + [-30] * 7 + [20] * 7 + [EXP_LO] * 7)
    got = rtl_convert(8, counts, exps, poison=np.ones(len(counts), dtype=int), bank=len(counts))
    assert np.all(got == NAN16)


def test_known_answers():
    cases = {                       # (count, E_out) -> pattern
        "zero": ((0, 0), 0x0000),
        "one": ((1, 0), 0x3C00),
        "minus one": ((-1, 0), 0xBC00),
        "largest finite": ((2047, 5), 0x7BFF),            # 65504
        "rounds to inf": ((4095, 4), 0x7C00),              # 65520 ties up past 65504
        "minus inf": ((-4095, 4), 0xFC00),
        "smallest subnormal": ((1, -24), 0x0001),
        "half of it, tie to even zero": ((1, -25), 0x0000),
        "negative underflow keeps sign": ((-1, -26), 0x8000),
        "subnormal rounds up to normal": ((2047, -25), 0x0400),    # 1023.5 * 2**-24 ties to even 1024
        "carry bumps exponent": ((4095, 0), 0x6C00),       # 4095 -> 4096
    }
    counts = np.array([c for (c, _), _ in cases.values()])
    exps = np.array([e for (_, e), _ in cases.values()])
    want = np.array(list(cases.values()), dtype=object)[:, 1].astype(np.uint16)
    assert list(rtl_convert(16, counts, exps, bank=len(counts))) == list(want)


@pytest.mark.parametrize("cls", [CountToFp16, CountNormalise, NormalisedToFp16])
@pytest.mark.parametrize("value,exc,msg", [
    (1, ValueError, "count_width must be in [2, 64], not 1"),
    (8.0, TypeError, "count_width must be an int, not 8.0"),
])
def test_parameter_errors(cls, value, exc, msg):
    with pytest.raises(exc) as info:
        cls(value)
    assert str(info.value) == msg

# amaranth: UnusedElaboratable=no
"""FP16 input blocks: decode, element exponent and magnitude shifter equal the golden model on every FP16
pattern; the exponent max trees (whole and split) and the vector of shifters equal it on edge-case and random
vectors. (InputStage, which composes them, has its own test.)"""
import numpy as np
import pytest
from amaranth.hdl import Cat, Elaboratable, Module, Signal, signed

from essop.config import EXP_PORT_MAX, EXP_PORT_MIN, EXP_PORT_WIDTH
from essop.golden import fp16 as ref
from essop.hdl.fp16_input import ExponentMax, Fp16Decode, Fp16PartialExponent, Fp16VectorInput, MagnitudeShift
from hdl_harness import EDGE_VECTORS, pack, simulate, unpack

SEED = 20261126
BANK = 512           # elements checked per simulator settle (exhaustive test)
SLICE = 256          # elements of the every-exponent slice
ALL = np.arange(1 << 16, dtype=np.uint16)


class _Bank(Elaboratable):
    """`bank` independent (decode -> shift) element paths sharing one exponent, packed flat for speed."""

    def __init__(self, q, bank):
        self.q, self.bank = q, bank
        self.bits = Signal(16 * self.bank)
        self.exp = Signal(signed(EXP_PORT_WIDTH))
        self.sign = Signal(self.bank)
        self.m = Signal(11 * self.bank)
        self.e_eff = Signal(5 * self.bank)
        self.finite = Signal(self.bank)
        self.elem_exp = Signal(EXP_PORT_WIDTH * self.bank)
        self.mag = Signal(q * self.bank)
        self.sat = Signal(self.bank)

    def elaborate(self, platform):
        m = Module()
        outs = {k: [] for k in ("sign", "m", "e_eff", "finite", "elem_exp", "mag", "sat")}
        for j in range(self.bank):
            m.submodules[f"dec_{j}"] = dec = Fp16Decode()
            m.submodules[f"sh_{j}"] = sh = MagnitudeShift(self.q)
            m.d.comb += [
                dec.i_bits.eq(self.bits.word_select(j, 16)),
                sh.i_m.eq(dec.o_m), sh.i_e_eff.eq(dec.o_e_eff), sh.i_elem_exp.eq(dec.o_exp),
                sh.i_finite.eq(dec.o_finite), sh.i_exp.eq(self.exp),
            ]
            for k, v in (("sign", dec.o_sign), ("m", dec.o_m), ("e_eff", dec.o_e_eff),
                         ("finite", dec.o_finite), ("elem_exp", dec.o_exp), ("mag", sh.o_mag),
                         ("sat", sh.o_saturated)):
                outs[k].append(v)
        for k, vs in outs.items():
            m.d.comb += getattr(self, k).eq(Cat(vs))
        return m


def rtl_elements(q, patterns, exps, bank=BANK):
    """Per element (sign, M, e_eff, finite, E(v)) and, for each exponent in `exps`, (a, saturated)."""
    dut = _Bank(q, bank)
    res = {k: [] for k in ("sign", "m", "e_eff", "finite", "elem_exp")}
    shifted = {e: ([], []) for e in exps}

    async def bench(ctx):
        for start in range(0, len(patterns), bank):
            chunk = list(patterns[start:start + bank]) + [0] * (bank - len(patterns[start:start + bank]))
            ctx.set(dut.bits, pack(chunk, 16))
            for e in exps:
                ctx.set(dut.exp, e)
                shifted[e][0].extend(unpack(ctx.get(dut.mag), q, bank))
                shifted[e][1].extend(unpack(ctx.get(dut.sat), 1, bank))
            for k, w, s in (("sign", 1, False), ("m", 11, False), ("e_eff", 5, False), ("finite", 1, False),
                            ("elem_exp", EXP_PORT_WIDTH, True)):
                res[k].extend(unpack(ctx.get(getattr(dut, k)), w, bank, s))

    simulate(dut, bench, clock=None)
    n = len(patterns)
    return ({k: np.array(v[:n]) for k, v in res.items()},
            {e: (np.array(a[:n]), np.array(s[:n], dtype=bool)) for e, (a, s) in shifted.items()})


def test_all_patterns():
    # Decode is exhaustive here; the shifter is exhaustive over patterns at two exponents (a per-pair-like
    # one and one that saturates half the patterns) and over exponents on a slice below.
    exps = [-14, 16]
    got, shifted = rtl_elements(8, ALL, exps)
    sign, M, e_eff, finite = ref.decode(ALL)
    assert np.array_equal(got["sign"], sign)
    assert np.array_equal(got["m"], M)
    assert np.array_equal(got["finite"], finite)
    # e_eff only matters for finite values; the RTL's is defined (e or 1) for all.
    assert np.array_equal(got["e_eff"][finite], e_eff[finite])
    assert np.array_equal(got["elem_exp"], ref.element_exponent(ALL))
    for e in exps:
        a, _, _, saturated = ref.to_magnitudes(ALL, e, 8)
        assert np.array_equal(shifted[e][0], a), f"E={e}"
        assert np.array_equal(shifted[e][1], saturated), f"E={e}"


@pytest.mark.parametrize("q", [1, 16])
def test_magnitude_shift_every_exponent_on_a_slice(q):
    rng = np.random.default_rng(SEED + q)
    # Every exponent field with the extreme fractions, then random patterns.
    edges = [(s << 15) | (e << 10) | f for s in (0, 1) for e in range(32) for f in (0, 1, 0x3FF)]
    patterns = np.concatenate([np.array(edges, dtype=np.uint16), rng.choice(ALL, SLICE - len(edges))])
    exps = list(range(EXP_PORT_MIN, EXP_PORT_MAX + 1))
    _, shifted = rtl_elements(q, patterns, exps, SLICE)
    for e in exps:
        a, _, _, saturated = ref.to_magnitudes(patterns, e, q)
        assert np.array_equal(shifted[e][0], a), f"E={e}"
        assert np.array_equal(shifted[e][1], saturated), f"E={e}"


def rtl_max(count, vectors):
    dut = ExponentMax(count)
    out = []

    async def bench(ctx):
        for v in vectors:
            ctx.set(dut.i_exps, pack(v, EXP_PORT_WIDTH))
            out.append(ctx.get(dut.o_max))

    simulate(dut, bench, clock=None)
    return out


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_exponent_max(count):
    rng = np.random.default_rng(SEED + count)
    vectors = [list(rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1, count)) for _ in range(200)]
    vectors += [[EXP_PORT_MIN] * count, [EXP_PORT_MAX] * count]
    assert rtl_max(count, vectors) == [max(v) for v in vectors]
    assert ExponentMax(count).depth == (count - 1).bit_length()


def rtl_vector(count, q, vectors, exps):
    dut = Fp16VectorInput(count, q)
    out = []

    async def bench(ctx):
        for v, e in zip(vectors, exps):
            ctx.set(dut.i_bits, pack(v, 16))
            ctx.set(dut.i_exp, e)
            out.append((unpack(ctx.get(dut.o_mag), q, count), unpack(ctx.get(dut.o_sign), 1, count),
                        unpack(ctx.get(dut.o_nonfinite), 1, count), ctx.get(dut.o_saturated)))

    simulate(dut, bench, clock=None)
    return out


def ref_vector(q, vectors, exps):
    out = []
    for v, e in zip(vectors, exps):
        a, sign, nonfinite, sat = ref.to_magnitudes(v, e, q)
        out.append((list(a), list(sign), [int(b) for b in nonfinite], int(sat.any())))
    return out


@pytest.mark.parametrize("exponent", ["own", "port"])
@pytest.mark.parametrize("q", [1, 4, 8, 16])
def test_vector_input(exponent, q):
    """Against each vector's own exponent (what the per_pair max trees give) and against random port exponents
    (block scaling)."""
    rng = np.random.default_rng(SEED + q)
    vectors = [list(v) for v in EDGE_VECTORS]
    vectors += [list(rng.choice(ALL, 5)) for _ in range(100)]
    # Realistic vectors: one scale per vector, as from a layer.
    vectors += [list((rng.standard_normal(5) * 2.0 ** rng.integers(-20, 10)).astype(np.float16).view(np.uint16))
                for _ in range(100)]
    if exponent == "own":
        exps = [ref.vector_exponent(np.array(v, dtype=np.uint16)) for v in vectors]
    else:
        exps = [int(e) for e in rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1, len(vectors))]
    assert rtl_vector(5, q, vectors, exps) == ref_vector(q, vectors, exps)


@pytest.mark.parametrize("count,levels", [(1, 0), (5, 0), (5, 1), (5, 2), (16, 2), (16, 4), (16, 6), (32, 2)])
def test_partial_exponent(count, levels):
    """Each partial max is its block of element exponents' max; the max of the partials is E."""
    rng = np.random.default_rng(SEED + 200 + count * 8 + levels)
    vectors = [list(rng.choice(ALL, count)) for _ in range(60)]
    vectors += [list(np.resize(v, count)) for v in EDGE_VECTORS]
    vectors += [list((rng.standard_normal(count) * 2.0 ** rng.integers(-26, 13)).astype(np.float16).view(np.uint16))
                for _ in range(60)]
    dut = Fp16PartialExponent(count, levels)
    block = 1 << levels
    assert dut.partial_count == len(range(0, count, block))
    got = []

    async def bench(ctx):
        for v in vectors:
            ctx.set(dut.i_bits, pack(v, 16))
            got.append(unpack(ctx.get(dut.o_partial), EXP_PORT_WIDTH, dut.partial_count, signed=True))

    simulate(dut, bench, clock=None)
    for v, partial in zip(vectors, got):
        elem = ref.element_exponent(np.array(v, dtype=np.uint16))
        assert partial == [int(elem[k:k + block].max()) for k in range(0, count, block)]
        assert max(partial) == ref.vector_exponent(np.array(v, dtype=np.uint16))


@pytest.mark.parametrize("args,exc,msg", [
    ((0, 8), ValueError, "count must be >= 1, not 0"),
    ((3, 0), ValueError, "q must be in [1, 16], not 0"),
    ((3, 8.0), TypeError, "q must be an int, not 8.0"),
    ((2.0, 8), TypeError, "count must be an int, not 2.0"),
])
def test_vector_input_parameter_errors(args, exc, msg):
    with pytest.raises(exc) as info:
        Fp16VectorInput(*args)
    assert str(info.value) == msg


def test_block_parameter_errors():
    with pytest.raises(ValueError) as info:
        ExponentMax(0)
    assert str(info.value) == "count must be >= 1, not 0"
    with pytest.raises(TypeError) as info:
        MagnitudeShift("8")
    assert str(info.value) == "q must be an int, not '8'"
    with pytest.raises(TypeError) as info:
        Fp16PartialExponent(2.0, 0)
    assert str(info.value) == "count must be an int, not 2.0"
    with pytest.raises(ValueError) as info:
        Fp16PartialExponent(4, -1)
    assert str(info.value) == "levels must be >= 0, not -1"
    with pytest.raises(TypeError) as info:
        Fp16PartialExponent(4, True)
    assert str(info.value) == "levels must be an int, not True"

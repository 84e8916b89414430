"""The FP16 multiplier and outer-product array in the Amaranth simulator equal NumPy float16 products."""
import numpy as np
import pytest

from essop.hdl.fp16_mul import MAX_STAGES, Fp16Multiplier
from essop.hdl.fp16_outer import Fp16Outer
from essop.sim import fp16_vectors as vec
from hdl_harness import simulate

SEED = 20200325


def rtl_products(stages: int, a: np.ndarray, b: np.ndarray, idle_every: int = 0) -> list[int]:
    """Drive one operand pair per cycle (an idle cycle every ``idle_every``), collect o_p on o_valid."""
    dut = Fp16Multiplier(stages)
    out = []

    async def bench(ctx):
        if stages == 0:
            for x, y in zip(a, b):
                ctx.set(dut.i_a, int(x))
                ctx.set(dut.i_b, int(y))
                ctx.set(dut.i_valid, 1)
                out.append(ctx.get(dut.o_p))
                assert ctx.get(dut.o_valid) == 1
            return
        k = 0
        cycle = 0
        while len(out) < len(a):
            idle = idle_every and cycle % idle_every == idle_every - 1
            if k < len(a) and not idle:
                ctx.set(dut.i_a, int(a[k]))
                ctx.set(dut.i_b, int(b[k]))
                ctx.set(dut.i_valid, 1)
                k += 1
            else:
                ctx.set(dut.i_valid, 0)
            _, _, valid, p = await ctx.tick().sample(dut.o_valid, dut.o_p)
            if valid:
                out.append(p)
            cycle += 1

    simulate(dut, bench, clock=1e-8 if stages else None)
    return out


def test_directed_cases():
    a = np.array([c[1] for c in vec.directed], np.uint16)
    b = np.array([c[2] for c in vec.directed], np.uint16)
    got = rtl_products(0, a, b)
    bad = vec.mismatches(a, b, got)
    assert not bad, [(vec.directed[i][0]) for i, c in enumerate(vec.directed) if (c[1], c[2]) in {x[:2] for x in bad}]


@pytest.mark.parametrize("stages", [0, 2, MAX_STAGES])
def test_random_ties_boundaries(stages):
    rng = np.random.default_rng(SEED + stages)
    parts = [vec.random_all_classes(rng, 1200), vec.rounding_ties(rng, 200), vec.boundaries(rng, 16)]
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    got = rtl_products(stages, a, b, idle_every=7)
    assert len(got) == len(a)
    assert vec.mismatches(a, b, got) == []


def test_ties_are_ties():
    """The tie generator really produces halfway cases, rounding both up and down."""
    rng = np.random.default_rng(SEED)
    a, b = vec.rounding_ties(rng, 200)
    exact = a.view(np.float16).astype(np.float64) * b.view(np.float16).astype(np.float64)
    rounded = vec.reference(a, b).view(np.float16).astype(np.float64)
    assert np.all(exact != rounded)
    ups = np.abs(rounded) > np.abs(exact)
    assert 0 < ups.sum() < len(ups)


def test_mismatch_detects_wrong_bits():
    assert vec.mismatches([0x3C00], [0x3C00], [0x3C01]) == [(0x3C00, 0x3C00, 0x3C00, 0x3C01)]
    assert vec.mismatches([0x7E01], [0x3C00], [0x7E00]) == []
    assert vec.mismatches([0x7E01], [0x3C00], [0x7C00]) != []


def test_latency_and_cuts():
    for s in range(MAX_STAGES + 1):
        mul = Fp16Multiplier(s)
        assert mul.latency == s == len(mul.cuts)


def test_outer_products():
    rng = np.random.default_rng(SEED)
    rows, cols, stages = 3, 2, 1
    dut = Fp16Outer(rows, cols, stages)
    xs = rng.integers(0, 1 << 16, (20, cols), dtype=np.uint32).astype(np.uint16)
    ds = rng.integers(0, 1 << 16, (20, rows), dtype=np.uint32).astype(np.uint16)
    out = []

    async def bench(ctx):
        for k in range(len(xs) + dut.latency):
            if k < len(xs):
                ctx.set(dut.i_x, int.from_bytes(xs[k].astype("<u2").tobytes(), "little"))
                ctx.set(dut.i_delta, int.from_bytes(ds[k].astype("<u2").tobytes(), "little"))
            ctx.set(dut.i_valid, int(k < len(xs)))
            _, _, valid, data = await ctx.tick().sample(dut.o_valid, dut.o_data)
            if valid:
                out.append([(data >> (16 * e)) & 0xFFFF for e in range(rows * cols)])

    simulate(dut, bench, clock=1e-8)
    got = np.array(out, np.uint16)
    a = np.repeat(ds, cols, axis=1)   # element i*cols + j: delta_i * x_j
    b = np.tile(xs, (1, rows))
    assert got.shape == a.shape
    assert vec.mismatches(a.ravel(), b.ravel(), got.ravel()) == []
    assert dut.products_per_cycle == rows * cols


@pytest.mark.parametrize("value, exc, msg", [
    (1.0, TypeError, "stages must be an int, not 1.0"),
    (True, TypeError, "stages must be an int, not True"),
    (-1, ValueError, f"stages must be in [0, {MAX_STAGES}], not -1"),
    (MAX_STAGES + 1, ValueError, f"stages must be in [0, {MAX_STAGES}], not {MAX_STAGES + 1}"),
])
def test_bad_stages(value, exc, msg):
    with pytest.raises(exc) as e:
        Fp16Multiplier(value)
    assert str(e.value) == msg
    with pytest.raises(exc) as e:
        Fp16Outer(2, 2, value)
    assert str(e.value) == msg


@pytest.mark.parametrize("kw, exc, msg", [
    ({"rows": 0}, ValueError, "rows must be in [1, 1024], not 0"),
    ({"cols": "4"}, TypeError, "cols must be an int, not '4'"),
])
def test_bad_outer_shape(kw, exc, msg):
    with pytest.raises(exc) as e:
        Fp16Outer(**({"rows": 2, "cols": 2} | kw))
    assert str(e.value) == msg

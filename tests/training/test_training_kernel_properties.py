"""Property tests: every counting path (native vector, native scalar, PyTorch; CUDA where present) gives the
golden model's integers for any shape — one pair, one row, one column, odd sizes, lengths that are no
multiple of 8 — any array configuration (BL, q, sharing, LFSR element words, random-number source LFSR or Sobol with or without
the per-pair shift, LFSR width/steps/seeds, run-on or restart) and any
FP16 value class (zeros of both signs, subnormals, normals, Inf, NaN), with block exponents and with
per-pair exponent segments."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import counts_reference
from essop.training import counts

PATHS = [("cpu", "native"), ("cpu", "native-scalar"), ("cpu", "torch")]
if torch.cuda.is_available():
    PATHS.append(("cuda", "torch"))

# Value classes as FP16 bit patterns: +-0, subnormals, normals of every exponent, +-Inf, NaNs.
CLASSES = {
    "zero": st.sampled_from([0x0000, 0x8000]),
    "subnormal": st.integers(1, 0x3FF) | st.integers(0x8001, 0x83FF),
    "normal": st.integers(0x0400, 0x7BFF) | st.integers(0x8400, 0xFBFF),
    "inf": st.sampled_from([0x7C00, 0xFC00]),
    "nan": st.integers(0x7C01, 0x7FFF),
}
patterns = st.one_of(CLASSES["zero"], CLASSES["subnormal"], CLASSES["normal"], CLASSES["normal"],
                     CLASSES["normal"], CLASSES["inf"], CLASSES["nan"])


@st.composite
def configs(draw, max_dim=13):
    width = draw(st.sampled_from([5, 7, 9, 11, 16]))
    q = draw(st.integers(1, min(width, 12)))
    period = (1 << width) - 1
    steps = draw(st.one_of(st.none(), st.integers(1, width).filter(lambda s: math.gcd(s, period) == 1)))
    # Any seed for short registers; for the default width a few, so the tables built stay few.
    seeds = st.integers(1, period) if width < 16 else st.sampled_from([0xACE1, 0x1D2B, 1, period])
    sharing = draw(st.sampled_from(["shared", "per_element"]))
    rng = draw(st.sampled_from(["lfsr", "sobol"]))
    return EssopConfig(
        rows=draw(st.integers(1, max_dim)), cols=draw(st.integers(1, max_dim)),
        bl=draw(st.sampled_from([2, 4, 8, 16, 32, 64, 128])), q=q,
        sharing=sharing, lfsr_width=width, lfsr_steps=steps,
        lfsr_seed_x=draw(seeds), lfsr_seed_d=draw(seeds),
        lfsr_restart=draw(st.booleans()), acc_depth=1 << 20, scaling="block", output_format="count",
        rng=rng, rng_shift=draw(st.booleans()),
        element_words=sharing == "per_element" and rng == "lfsr" and draw(st.booleans()),
        rng_shift_seed=draw(st.integers(1, (1 << max(2 * q, 3)) - 1)))


def _matrix(draw, rows, cols, dense):
    if dense:      # realistic: mostly normals of a few nearby exponents, some zeros
        base = draw(st.integers(0x2000, 0x5000))
        return np.array([[draw(st.sampled_from([0, base, base + 0x123, 0x8000 | (base + 0x40), base + 0x400]))
                          for _ in range(cols)] for _ in range(rows)], dtype=np.uint16)
    return np.array([[draw(patterns) for _ in range(cols)] for _ in range(rows)], dtype=np.uint16)


@st.composite
def groups(draw):
    cfg = draw(configs())
    P = draw(st.integers(1, 9))
    dense = draw(st.booleans())
    x = _matrix(draw, P, cfg.cols, dense)
    d = _matrix(draw, P, cfg.rows, dense)
    # Block exponents: the data's own, or below it (magnitudes saturate), or far above (all vanish).
    ex = int(np.clip(fp16.vector_exponent(x) + draw(st.integers(-3, 3)), -32, 31))
    ed = int(np.clip(fp16.vector_exponent(d) + draw(st.integers(-3, 3)), -32, 31))
    start = draw(st.integers(0, 3 * ((1 << cfg.lfsr_width) - 1)))
    return cfg, x, d, ex, ed, start


def _usable(cfg, backend):
    return not backend.startswith("native") or counts.native_supports(cfg)


@pytest.mark.parametrize("device,backend", PATHS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=groups())
def test_block_group_counts_equal_golden(device, backend, case):
    cfg, x, d, ex, ed, start = case
    backend = backend if _usable(cfg, backend) else "torch"
    ref, _ = counts_reference(cfg, x, d, ex, ed, start_pair=start)
    got = counts.essop_counts(x, d, ex, ed, start, cfg, device=device, backend=backend)
    assert got.dtype == torch.int64
    assert np.array_equal(got.cpu().numpy(), ref)


@st.composite
def segmented(draw):
    """Pairs with their own exponents (per_pair), cut into segments by exponent sum like the layers do."""
    cfg = draw(configs(max_dim=9))
    P = draw(st.integers(1, 12))
    x = _matrix(draw, P, cfg.cols, True)
    d = _matrix(draw, P, cfg.rows, draw(st.booleans()))
    start = draw(st.integers(0, 5000))
    return cfg, x, d, start


@pytest.mark.parametrize("device,backend", PATHS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=segmented())
def test_per_pair_segments_equal_golden_pair_by_pair(device, backend, case):
    cfg, x, d, start = case
    backend = backend if _usable(cfg, backend) else "torch"
    P = x.shape[0]
    ex = np.array([fp16.vector_exponent(x[p]) for p in range(P)])
    ed = np.array([fp16.vector_exponent(d[p]) for p in range(P)])
    k = ex + ed
    order = np.argsort(k, kind="stable")
    keys, first = np.unique(k[order], return_index=True)
    seg = np.append(first, P)
    xs = counts.Pairs.from_rows(torch.from_numpy(x.view(np.int16)).to(device), torch.from_numpy(ex).to(device))
    ds = counts.Pairs.from_rows(torch.from_numpy(d.view(np.int16)).to(device), torch.from_numpy(ed).to(device))
    got = counts.segment_counts(cfg, xs, ds, torch.from_numpy(order).to(device), torch.from_numpy(seg).to(device),
                                start, backend).cpu().numpy()
    one = cfg.replace(acc_depth=1)
    for s, key in enumerate(keys):
        ref = sum(counts_reference(one, x[p:p + 1], d[p:p + 1], int(ex[p]), int(ed[p]), start_pair=start + p)[0]
                  for p in order[seg[s]:seg[s + 1]])
        assert np.array_equal(got[s], ref), (s, key)


def test_degenerate_shapes_named_in_the_issue():
    """EssopConfig(rows=1, cols=1, acc_depth=4, block) on [[1.0]] x [[1.0]], and a [1, 16] operand."""
    for rows, cols in ((1, 1), (1, 16), (16, 1)):
        cfg = EssopConfig(rows=rows, cols=cols, acc_depth=4, scaling="block", output_format="count")
        x = np.ones((1, cols), np.float16)
        d = np.ones((1, rows), np.float16)
        ref, _ = counts_reference(cfg, x.view(np.uint16), d.view(np.uint16), 1, 1)
        for device, backend in PATHS:
            got = counts.essop_counts(x, d, 1, 1, 0, cfg, device=device, backend=backend).cpu().numpy()
            assert np.array_equal(got, ref)
            assert np.abs(got).max() <= cfg.bl        # never the billions _int_mm once produced


@pytest.mark.parametrize("name", list(CLASSES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_strategy_reaches_every_value_class(name, data):
    """The value-class strategies above are not vacuous: each draws patterns of the class it names."""
    v = data.draw(CLASSES[name])
    e, f = (v >> 10) & 31, v & 1023
    assert {"zero": e == 0 and f == 0, "subnormal": e == 0 and f != 0, "normal": 0 < e < 31,
            "inf": e == 31 and f == 0, "nan": e == 31 and f != 0}[name]

"""Training kernel == golden model: counts identical, bit for bit, for every sharing mode, random-number source
(LFSR, Sobol, with and without the per-pair shift), BL, run-on/restart."""
import numpy as np
import pytest
import torch

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import EssopArrayModel, counts_reference
from essop.training import counts, fp16_tensors, random_tables

F16 = np.float16
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: (device, backend) pairs: every counting path this machine can run.
PATHS = [("cpu", "native"), ("cpu", "native-scalar"), ("cpu", "torch")] + [(d, "torch") for d in DEVICES[1:]]


def _layer_pairs(rng, P, n, m, relu=True):
    """x like post-ReLU activations with a wide dynamic range; delta like small signed output gradients,
    with some exact zeros, a negative zero and subnormals."""
    x = rng.standard_normal((P, n)) * np.exp(rng.standard_normal((P, n)) * 0.7)
    if relu:
        x = np.maximum(x, 0)
    d = rng.standard_normal((P, m)) * 1e-4 * np.exp(rng.standard_normal((P, m)) * 0.7)
    d[rng.random((P, m)) < 0.2] = 0.0
    d.flat[0] = -0.0
    d.flat[1] = 3e-7          # FP16 subnormal
    return x.astype(F16), d.astype(F16)


def _cfg(m, n, P, **kw):
    return EssopConfig(rows=m, cols=n, acc_depth=P, scaling="block", output_format="count", **kw)


#: Random-number sources: EssopConfig fields of each.
SOURCES = {"lfsr": {}, "sobol": dict(rng="sobol"), "sobol+shift": dict(rng="sobol", rng_shift=True),
           "lfsr+shift": dict(rng_shift=True, rng_shift_seed=0x1234)}
#: (sharing, source) pairs: every source with both sharing modes, and the LFSR element words (per_element only).
SHARED_SOURCES = [(sh, so) for sh in ("shared", "per_element") for so in ("lfsr", "sobol", "sobol+shift")] + \
    [("per_element", "lfsr+words")]
WORDS = {"lfsr+words": dict(element_words=True), "lfsr+words+shift": dict(element_words=True, rng_shift=True)}


@pytest.mark.parametrize("device,backend", PATHS)
@pytest.mark.parametrize("sharing,source", SHARED_SOURCES)
@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.parametrize("bl", [2, 8, 16, 32, 64, 256])
@pytest.mark.parametrize("layer", ["conv3x3", "linear"])
def test_kernel_equals_golden_reference(device, backend, sharing, restart, bl, layer, source):
    rng = np.random.default_rng([bl, restart, len(sharing), len(layer)] + ([] if source == "lfsr" else [len(source)]))
    # conv3x3: Cin=3 (n = 27) -> Cout=8, pairs = 2 images x 5x5 positions; linear: 20 -> 10, 6 images.
    P, n, m = (50, 27, 8) if layer == "conv3x3" else (6, 20, 10)
    x, d = _layer_pairs(rng, P, n, m, relu=layer == "linear")
    cfg = _cfg(m, n, P, bl=bl, sharing=sharing, lfsr_restart=restart, **{**SOURCES, **WORDS}[source])
    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
    start = int(rng.integers(0, 200_000))
    ref, _ = counts_reference(cfg, x.view(np.uint16), d.view(np.uint16), ex, ed, start_pair=start)
    got = counts.essop_counts(x, d, ex, ed, start, cfg, device=device, backend=backend, chunk_rows=96)
    assert got.dtype == torch.int64
    assert np.array_equal(got.cpu().numpy(), ref)
    assert np.abs(ref).sum() > 0      # the case counts something


@pytest.mark.parametrize("backend", ["native", "native-scalar", "torch"])
@pytest.mark.parametrize("sharing", ["shared", "per_element"])
@pytest.mark.parametrize("kw", [dict(bl=16), dict(bl=32, q=6, lfsr_width=11, lfsr_seed_x=0x2A5, lfsr_seed_d=0x13), dict(bl=8, q=10, lfsr_steps=7),
                                dict(bl=4, q=4, lfsr_width=7, lfsr_seed_x=0x45, lfsr_seed_d=0x3, lfsr_restart=True),
                                dict(bl=16, **SOURCES["lfsr+shift"]), dict(bl=8, q=10, **SOURCES["sobol+shift"]),
                                dict(bl=64, q=5, **SOURCES["sobol"]), dict(bl=4, q=3, lfsr_restart=True, **SOURCES["sobol+shift"])])
def test_kernel_equals_cycle_level_model_over_successive_groups(backend, sharing, kw):
    _run_on_across_groups(backend, sharing, kw)


@pytest.mark.parametrize("backend", ["native", "native-scalar", "torch"])
@pytest.mark.parametrize("kw", [dict(bl=16, **WORDS["lfsr+words"]), dict(bl=8, q=10, **WORDS["lfsr+words+shift"]),
                                dict(bl=4, q=4, lfsr_width=7, lfsr_seed_x=0x45, lfsr_seed_d=0x3, lfsr_restart=True,
                                     **WORDS["lfsr+words"])])
def test_kernel_equals_cycle_level_model_with_element_words(backend, kw):
    """LFSR element words (one register per side, a constant word per element), run on across groups."""
    _run_on_across_groups(backend, "per_element", kw)


def _run_on_across_groups(backend, sharing, kw):
    """Run-on across groups: the kernel started at the model's pair count gives the model's counts (q > 8
    takes the native kernel's 16-bit lanes; lfsr_steps=7 != q: per_element generator offsets are the phase
    stride divided by the step count modulo the period). (lfsr_steps=3 was here: EssopConfig now refuses step
    counts sharing a factor with 2**w - 1, tests/test_config.py.)"""
    rng = np.random.default_rng(len(sharing) + kw["bl"])
    m, n, depth = 5, 7, 6
    cfg = _cfg(m, n, depth, sharing=sharing, **kw)
    model = EssopArrayModel(cfg)
    for P in (3, 6, 1):
        x, d = _layer_pairs(rng, P, n, m, relu=False)
        ex, ed = fp16.vector_exponent(x) + 1, fp16.vector_exponent(d)   # a block exponent above the data's
        start = model.pairs_done
        ref = model.process_group(x, d, ex, ed)
        use = backend if counts.native_supports(cfg) else "torch"
        got = counts.essop_counts(x, d, ex, ed, start, cfg, backend=use)
        assert np.array_equal(got.numpy(), ref.counts)


def test_saturating_block_exponent_matches_golden():
    rng = np.random.default_rng(7)
    x, d = _layer_pairs(rng, 9, 6, 4, relu=False)
    cfg = _cfg(4, 6, 9, bl=16)
    ex, ed = fp16.vector_exponent(x) - 3, fp16.vector_exponent(d) - 2   # many magnitudes clamp to 2**q - 1
    ref, _ = counts_reference(cfg, x.view(np.uint16), d.view(np.uint16), ex, ed, start_pair=11)
    for backend in ("native", "native-scalar", "torch"):
        assert np.array_equal(counts.essop_counts(x, d, ex, ed, 11, cfg, backend=backend).numpy(), ref)


def test_nonfinite_inputs_count_as_zero_like_the_golden_model():
    rng = np.random.default_rng(3)
    x, d = _layer_pairs(rng, 5, 6, 4, relu=False)
    x[1, 2], d[3, 0] = np.inf, np.nan
    cfg = _cfg(4, 6, 5, bl=16)
    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
    ref = EssopArrayModel(cfg).process_group(x, d, ex, ed)
    for backend in ("native", "native-scalar", "torch"):
        assert np.array_equal(counts.essop_counts(x, d, ex, ed, 0, cfg, backend=backend).numpy(), ref.counts)


def test_magnitudes_and_exponents_equal_golden_over_all_fp16_patterns():
    bits = np.arange(1 << 16, dtype=np.uint16)
    t = fp16_tensors.as_bits(bits)
    assert np.array_equal(fp16_tensors.element_exponents(t).numpy(), fp16.element_exponent(bits))
    for E, q in ((-24, 8), (0, 8), (5, 4), (16, 8), (31, 12), (-32, 1)):
        a, neg, nonfin, sat = fp16_tensors.magnitudes(t, E, q)
        ra, rs, rnf, rsat = fp16.to_magnitudes(bits, E, q)
        assert np.array_equal(a.numpy(), ra)
        assert np.array_equal(neg.numpy(), rs == 1)
        assert np.array_equal(nonfin.numpy(), rnf)
        assert np.array_equal(sat.numpy(), rsat)


@pytest.mark.parametrize("s,E,q", [(0, 10, 8), (3, 16, 8), (-5, 2, 8), (20, 15, 8), (14, 15, 4), (40, 15, 12)])
def test_float_magnitude_path_equals_integer_barrel_shifter(s, E, q):
    """The expected mode computes +-a in FP32 arithmetic; it must equal the spec's integer path."""
    g = torch.Generator().manual_seed(s * 100 + E)
    v = torch.randn(200_000, generator=g) * torch.exp(torch.randn(200_000, generator=g) * 4)
    v[:4] = torch.tensor([0.0, -0.0, 2.0 ** -30, -(2.0 ** -25)])
    h = (v * 2.0 ** s).to(torch.float16)
    h = h[torch.isfinite(h)]
    ref = fp16_tensors.signed_magnitudes(fp16_tensors.as_bits(h), E, q)
    got = fp16_tensors.float_magnitudes(h.to(torch.float32), torch.full(h.shape, E), q)
    assert torch.equal(got, ref.to(torch.float32))
    assert (ref != 0).any()


@pytest.mark.parametrize("sharing,source", [(sh, so) for sh in ("shared", "per_element") for so in SOURCES] +
                         [("per_element", so) for so in WORDS])
def test_tables_rebuild_the_golden_random_numbers(source, sharing):
    """random_tables' parts put together as the kernels do (cycle table + offset, XOR word, pair word) give
    essop.golden.random_sources.random_numbers for every generator, cycle for cycle."""
    from essop.golden.random_sources import random_numbers
    cfg = EssopConfig(rows=3, cols=5, bl=8, q=7, sharing=sharing, **{**SOURCES, **WORDS}[source])
    start_pair, P = 40_000, 9
    for side in ("x", "d"):
        ref = random_numbers(cfg, side, P * cfg.bl, start_pair * cfg.bl)
        tab = random_tables.cycle_table(cfg, side).to(torch.int64)
        off = random_tables.generator_offsets(cfg, side)
        words = random_tables.generator_words(cfg, side)
        pw = random_tables.pair_words(cfg, side, start_pair, P)
        c = torch.arange(start_pair * cfg.bl, (start_pair + P) * cfg.bl) % cfg.rng_period
        got = tab[(c[None, :] + off[:, None]) % cfg.rng_period]
        if words is not None:
            got = got ^ words[:, None]
        if pw is not None:
            got = got ^ pw.repeat_interleave(cfg.bl)[None, :]
        assert np.array_equal(got.numpy(), ref)
        assert (words is not None) == (source.startswith("sobol") and sharing == "per_element"
                                       or "words" in source)
        # Element words: the offsets are all 0 (one register per side), the words the bit-reversed indices.
        assert (off.any()) == (source in ("lfsr", "lfsr+shift") and sharing == "per_element")
        assert (pw is not None) == source.endswith("shift")


def test_lfsr_table_is_the_golden_sequence():
    from essop.golden.random_sources import random_numbers
    for kw in (dict(), dict(lfsr_width=9, q=5, lfsr_seed_x=0x1F1, lfsr_seed_d=0x7), dict(lfsr_width=20, lfsr_steps=7)):
        cfg = EssopConfig(**kw)
        period = (1 << cfg.lfsr_width) - 1
        for side in ("x", "d"):
            tab = random_tables.lfsr_table(cfg, side)
            one = cfg.replace(lfsr_steps=1)
            ref = random_numbers(one, side, 5000, period - 2000)[0]
            got = tab[(torch.arange(period - 2000, period + 3000) % period)].numpy()
            assert np.array_equal(got, ref)


def test_invalid_arguments_raise_clear_errors():
    cfg = _cfg(4, 6, 5)
    x, d = np.zeros((5, 6), F16), np.zeros((5, 4), F16)
    with pytest.raises(ValueError, match=r"^the training kernel tabulates LFSRs of width <= 24, not lfsr_width=25$"):
        random_tables.lfsr_table(cfg.replace(lfsr_width=25, lfsr_seed_x=1, lfsr_seed_d=1), "x")
    with pytest.raises(TypeError, match=r"^exp_x must be an int, not 1.5$"):
        counts.essop_counts(x, d, 1.5, 0, 0, cfg)
    with pytest.raises(ValueError, match=r"^exp_d must be in \[-32, 31\], not 40$"):
        counts.essop_counts(x, d, 0, 40, 0, cfg)
    with pytest.raises(ValueError, match=r"^a group holds at most acc_depth=5 pairs, not 6$"):
        counts.essop_counts(np.zeros((6, 6), F16), np.zeros((6, 4), F16), 0, 0, 0, cfg)
    with pytest.raises(ValueError, match=r"^x must have cols=6 and d rows=4 elements, not 5 and 4$"):
        counts.essop_counts(np.zeros((5, 5), F16), d, 0, 0, 0, cfg)
    with pytest.raises(ValueError, match=r"^start_pair must be a non-negative int, not -1$"):
        counts.essop_counts(x, d, 0, 0, -1, cfg)
    with pytest.raises(TypeError, match=r"^expected FP16 bit patterns or float16 values, not dtype float64$"):
        counts.essop_counts(np.zeros((5, 6)), d, 0, 0, 0, cfg)


@pytest.mark.parametrize("backend", ["native", "native-scalar", "torch"])
def test_wide_lfsr_per_element_equals_golden(backend):
    rng = np.random.default_rng(5)
    x, d = _layer_pairs(rng, 12, 9, 4, relu=False)
    cfg = _cfg(4, 9, 12, bl=8, sharing="per_element", lfsr_width=20, lfsr_seed_x=0x9ABCD, lfsr_seed_d=0x1234)
    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
    ref, _ = counts_reference(cfg, x.view(np.uint16), d.view(np.uint16), ex, ed, start_pair=777)
    assert np.array_equal(counts.essop_counts(x, d, ex, ed, 777, cfg, backend=backend).numpy(), ref)

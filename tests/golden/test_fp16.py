"""Golden FP16 blocks against independent references: NumPy float16/float64 arithmetic."""
import numpy as np
import pytest

from essop.golden import fp16

ALL = np.arange(1 << 16, dtype=np.uint16)
VALUES = ALL.view(np.float16).astype(np.float64)
FINITE_NONZERO = np.isfinite(VALUES) & (VALUES != 0)


def test_element_exponent_is_smallest_power_above_every_finite_value():
    E = fp16.element_exponent(ALL)
    v = np.abs(VALUES[FINITE_NONZERO])
    assert np.all(v < 2.0 ** E[FINITE_NONZERO])
    assert np.all(v >= 2.0 ** (E[FINITE_NONZERO] - 1))


@pytest.mark.parametrize("bits, expected", [
    ([0x0000, 0x8000], -24),               # +0 / -0 only
    ([0x0001], -23),                       # smallest subnormal 2**-24
    ([0x3C00], 1),                         # 1.0 < 2**1
    ([0x3BFF, 0x0001], 0),                 # 0.99951 < 2**0
    ([0x7BFF], 16),                        # 65504
    ([0x7C00, 0x7E00, 0x3800], 0),         # Inf, NaN excluded; 0.5 -> 0
    ([0x7C00, 0xFE00], -24),               # nothing finite
])
def test_vector_exponent_known_answers(bits, expected):
    assert fp16.vector_exponent(np.array(bits, dtype=np.uint16)) == expected


def test_vector_exponent_rejects_empty_vector():
    with pytest.raises(ValueError, match="empty vector"):
        fp16.vector_exponent(np.array([], dtype=np.uint16))


@pytest.mark.parametrize("q", [1, 4, 8, 11, 12, 16])
@pytest.mark.parametrize("E", [-24, -14, -3, 0, 1, 9, 16, -32, 31])
def test_magnitudes_equal_floor_of_scaled_value_on_every_pattern(q, E):
    a, sign, nonfinite, saturated = fp16.to_magnitudes(ALL, E, q)
    finite = np.isfinite(VALUES)
    scaled = np.floor(np.abs(np.where(finite, VALUES, 0.0)) * 2.0 ** (q - E))
    assert np.array_equal(a, np.minimum(scaled, 2 ** q - 1).astype(np.int64))
    assert np.array_equal(saturated, scaled > 2 ** q - 1)
    assert np.array_equal(nonfinite, ~finite)
    assert np.array_equal(sign, (ALL >> 15).astype(np.int64))


def test_per_pair_exponent_never_saturates():
    rng = np.random.default_rng(7)
    for _ in range(200):
        v = rng.choice(ALL, size=16)
        E = fp16.vector_exponent(v)
        assert not fp16.to_magnitudes(v, E, 8)[3].any()


@pytest.mark.parametrize("e_out", range(-70, 40, 3))
def test_count_to_fp16_equals_numpy_correct_rounding(e_out):
    rng = np.random.default_rng(e_out + 100)
    counts = np.concatenate([np.arange(-3000, 3001), rng.integers(-2 ** 40, 2 ** 40, 5000),
                             rng.integers(-2 ** 20, 2 ** 20, 5000)])
    got = fp16.count_to_fp16(counts, e_out)
    with np.errstate(over="ignore"):
        ref = np.float16(counts.astype(np.float64) * 2.0 ** e_out).view(np.uint16)
    ref = np.where(counts == 0, np.uint16(0), ref)   # a zero count is +0 by contract
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("count, e_out, expected", [
    (0, 5, 0x0000),
    (1, 0, 0x3C00),
    (-1, 0, 0xBC00),
    (2049, 0, 0x6800),        # tie 2048.5*... rounds to even (2048)
    (2051, 0, 0x6802),        # tie rounds up to even
    (65504, 0, 0x7BFF),
    (65519, 0, 0x7BFF),       # below the rounding midpoint to Inf
    (65520, 0, 0x7C00),       # rounds to Inf
    (-65520, 0, 0xFC00),
    (1, -24, 0x0001),         # smallest subnormal
    (1, -25, 0x0000),         # half of it: tie to even -> +0
    (3, -26, 0x0001),         # 0.75 ulp -> 1
    (-1, -26, 0x8000),        # underflow keeps the sign
    (2047, -25, 0x0400),      # 1023.5 ulp ties to even 1024: the smallest normal
])
def test_count_to_fp16_known_answers(count, e_out, expected):
    assert int(fp16.count_to_fp16(np.array([count]), e_out)[0]) == expected


def test_float16_values_are_accepted_as_bit_patterns():
    assert np.array_equal(fp16.as_bits(np.array([1.0, -2.0], dtype=np.float16)), [0x3C00, 0xC000])
    with pytest.raises(TypeError, match="float16"):
        fp16.as_bits(np.array([1.0]))
    with pytest.raises(ValueError, match=r"\[0, 0xFFFF\]"):
        fp16.as_bits(np.array([70000]))

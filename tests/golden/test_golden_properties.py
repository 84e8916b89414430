"""Property tests of the golden model against direct arithmetic (hypothesis): magnitudes and exponents from
exact float arithmetic, counts within their bounds and of the right sign, the random numbers' exact
distribution over a period, count-to-FP16 against NumPy's correctly rounded float16; and configuration round
trips (JSON, dict, command-line flags)."""
import argparse
import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings, strategies as st

from essop.config import (EXP_PORT_MAX, EXP_PORT_MIN, EssopConfig, OUTPUT_FORMATS, RNG_SOURCES, SCALING_MODES,
                          SHARING_MODES)
from essop.golden import fp16
from essop.golden.array import EssopArrayModel, counts_reference
from essop.golden.random_sources import random_numbers

finite_patterns = st.integers(0, 0x7BFF) | st.integers(0x8000, 0xFBFF)


def _value(bits: int) -> Fraction:
    return Fraction(float(np.uint16(bits).view(np.float16)))


@settings(max_examples=400, deadline=None)
@given(bits=finite_patterns, E=st.integers(EXP_PORT_MIN, EXP_PORT_MAX), q=st.integers(1, 16))
def test_magnitude_is_the_clamped_floor_of_the_scaled_value(bits, E, q):
    a, sign, nonfinite, saturated = fp16.to_magnitudes(np.array([bits], np.uint16), E, q)
    exact = math.floor(abs(_value(bits)) * Fraction(2) ** (q - E))
    assert int(a[0]) == min(exact, (1 << q) - 1)
    assert bool(saturated[0]) == (exact > (1 << q) - 1)
    assert int(sign[0]) == bits >> 15 and not nonfinite[0]


@settings(max_examples=300, deadline=None)
@given(vec=st.lists(finite_patterns, min_size=1, max_size=12))
def test_vector_exponent_is_the_smallest_power_of_two_above_the_largest_magnitude(vec):
    E = fp16.vector_exponent(np.array(vec, np.uint16))
    top = max(abs(_value(b)) for b in vec)
    if top == 0:
        assert E == -24
    else:
        assert top < Fraction(2) ** E and not top < Fraction(2) ** (E - 1)
        # then no magnitude saturates and the largest is at least 2**(q-1): the full q-bit range is used
        a, _, _, sat = fp16.to_magnitudes(np.array(vec, np.uint16), E, 8)
        assert not sat.any() and a.max() >= 1 << 7


@settings(max_examples=300, deadline=None)
@given(count=st.integers(-(1 << 40), 1 << 40), e=st.integers(-70, 40))
def test_count_to_fp16_is_numpys_correct_rounding(count, e):
    got = int(fp16.count_to_fp16(np.array([count], np.int64), e)[0])
    ref = np.float64(count) * np.float64(2.0) ** e              # exact: |count| < 2**53
    with np.errstate(over="ignore"):                             # overflow to +-Inf is the expected answer
        want = int(np.float16(ref).view(np.uint16))
    assert got == want


@st.composite
def small_groups(draw):
    cfg = EssopConfig(rows=draw(st.integers(1, 5)), cols=draw(st.integers(1, 5)), bl=draw(st.sampled_from([2, 4, 16, 64])),
                      q=draw(st.integers(1, 8)), sharing=draw(st.sampled_from(SHARING_MODES)), lfsr_width=9,
                      lfsr_seed_x=draw(st.integers(1, 511)), lfsr_seed_d=draw(st.integers(1, 511)),
                      lfsr_restart=draw(st.booleans()), acc_depth=8, scaling="block", output_format="count",
                      rng=draw(st.sampled_from(RNG_SOURCES)), rng_shift=draw(st.booleans()))
    P = draw(st.integers(1, 4))
    x = np.array(draw(st.lists(finite_patterns, min_size=P * cfg.cols, max_size=P * cfg.cols)), np.uint16)
    d = np.array(draw(st.lists(finite_patterns, min_size=P * cfg.rows, max_size=P * cfg.rows)), np.uint16)
    return cfg, x.reshape(P, cfg.cols), d.reshape(P, cfg.rows), draw(st.integers(0, 2000))


@settings(max_examples=150, deadline=None)
@given(case=small_groups())
def test_counts_are_bounded_signed_and_zero_where_a_magnitude_is(case):
    cfg, x, d, start = case
    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
    counts, _ = counts_reference(cfg, x, d, ex, ed, start_pair=start)
    a, sa, _, _ = fp16.to_magnitudes(x, ex, cfg.q)
    b, sb, _, _ = fp16.to_magnitudes(d, ed, cfg.q)
    P = x.shape[0]
    assert np.abs(counts).max() <= cfg.bl * P
    # one pair at a time: |C_ij| <= min(#cycles where X_j fires, #cycles where D_i fires), with the sign product
    model = EssopArrayModel(cfg)
    model.pairs_done = start
    for p in range(P):
        c = model.process_group(x[p:p + 1], d[p:p + 1], ex, ed).counts
        assert np.all(c[b[p] == 0, :] == 0) and np.all(c[:, a[p] == 0] == 0)
        sign = 1 - 2 * (sb[p][:, None] ^ sa[p][None, :]).astype(np.int64)
        assert np.all(c * sign >= 0)
        Rx = random_numbers(cfg, "x", cfg.bl, (start + p) * cfg.bl)
        Rd = random_numbers(cfg, "d", cfg.bl, (start + p) * cfg.bl)
        fires_x = (Rx < a[p][:, None]).sum(1) if cfg.sharing == "per_element" else (Rx[0][None, :] < a[p][:, None]).sum(1)
        fires_d = (Rd < b[p][:, None]).sum(1) if cfg.sharing == "per_element" else (Rd[0][None, :] < b[p][:, None]).sum(1)
        assert np.all(np.abs(c) <= np.minimum(fires_d[:, None], fires_x[None, :]))


@settings(max_examples=60, deadline=None)
@given(width=st.sampled_from([5, 7, 9, 11]), data=st.data())
def test_random_numbers_over_a_period_have_the_exact_distribution(width, data):
    """Over a full period of a stepped sequence that visits every state, value v of the low q bits occurs
    2**(w-q) times, except 0, which occurs once less (the all-zero state never does)."""
    q = data.draw(st.integers(1, width))
    period = (1 << width) - 1
    steps = data.draw(st.integers(1, width).filter(lambda s: math.gcd(s, period) == 1))
    cfg = EssopConfig(q=q, lfsr_width=width, lfsr_steps=steps, lfsr_seed_x=data.draw(st.integers(1, period)),
                      lfsr_seed_d=1)
    R = random_numbers(cfg, "x", period, data.draw(st.integers(0, 10 * period)))[0]
    hist = np.bincount(R, minlength=1 << q)
    want = np.full(1 << q, 1 << (width - q))
    want[0] -= 1
    assert np.array_equal(hist, want)


@settings(max_examples=30, deadline=None)
@given(q=st.integers(1, 12), data=st.data())
def test_sobol_numbers_over_a_period_take_every_value_once(q, data):
    """A Sobol generator's 2**q cycles of a period (any start, any per-element or per-pair shift held fixed)
    put every q-bit value on the comparators exactly once."""
    cfg = EssopConfig(q=q, rng="sobol", bl=2, sharing=data.draw(st.sampled_from(SHARING_MODES)), rows=3, cols=2)
    for side in ("x", "d"):
        R = random_numbers(cfg, side, 1 << q, data.draw(st.integers(0, 1 << 20)))
        assert all(np.array_equal(np.sort(r), np.arange(1 << q)) for r in R)


@st.composite
def valid_configs(draw):
    scaling = draw(st.sampled_from(SCALING_MODES))
    width = draw(st.integers(12, 20))
    q = draw(st.integers(1, 12))
    return EssopConfig(
        rows=draw(st.integers(1, 64)), cols=draw(st.integers(1, 64)), bl=draw(st.sampled_from([2 ** k for k in range(1, 11)])),
        q=q, sharing=draw(st.sampled_from(SHARING_MODES)), lfsr_width=width,
        lfsr_steps=draw(st.none() | st.integers(1, 12).filter(lambda s: math.gcd(s, (1 << width) - 1) == 1)),
        lfsr_seed_x=draw(st.integers(1, 4095)), lfsr_seed_d=draw(st.integers(1, 4095)),
        lfsr_restart=draw(st.booleans()), rng=draw(st.sampled_from(RNG_SOURCES)), rng_shift=draw(st.booleans()),
        rng_shift_seed=draw(st.integers(1, (1 << max(2 * q, 3)) - 1)),
        acc_depth=1 if scaling == "per_pair" else draw(st.integers(1, 100)), scaling=scaling,
        lr_shift=draw(st.integers(-32, 32)), output_format=draw(st.sampled_from(OUTPUT_FORMATS)))


@settings(max_examples=200, deadline=None)
@given(cfg=valid_configs())
def test_configuration_round_trips_through_json_dict_and_flags(cfg):
    from essop.app.options import add_config_arguments, config_from_args
    assert EssopConfig.from_json(cfg.to_json()) == cfg
    assert EssopConfig.from_dict(cfg.to_dict()) == cfg
    assert EssopConfig.from_json(cfg.to_json()).to_json() == cfg.to_json()
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    argv = []
    for name, value in cfg.to_dict().items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, hex(value) if "seed" in name else str(value)]
    assert config_from_args(parser.parse_args(argv)) == cfg

"""Golden array: the cycle-level model and the vectorised reference agree; known answers; edge cases."""
import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import EssopArrayModel, counts_reference

F16 = np.float16


def _rand(rng, P, n, m):
    x = np.maximum(rng.standard_normal((P, n)), 0).astype(F16)     # ReLU-like
    d = (rng.standard_normal((P, m)) * 1e-3).astype(F16)
    return x, d


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.parametrize("bl", [2, 16, 64])
def test_cycle_model_equals_vectorised_reference(sharing, restart, bl):
    rng = np.random.default_rng(bl)
    cfg = EssopConfig(rows=4, cols=6, bl=bl, sharing=sharing, lfsr_restart=restart, acc_depth=5,
                      scaling="block")
    model = EssopArrayModel(cfg)
    x0, d0 = _rand(rng, 3, 6, 4)
    model.process_group(x0, d0, 0, -8)                     # advance the run-on LFSR position by 3 pairs
    x, d = _rand(rng, 5, 6, 4)
    ex, ed = fp16.vector_exponent(x), fp16.vector_exponent(d)
    got = model.process_group(x, d, ex, ed)
    counts, e_out = counts_reference(cfg, x, d, ex, ed, start_pair=3)
    assert np.array_equal(got.counts, counts) and got.e_out == e_out


def test_full_period_count_is_the_exact_fraction_of_random_numbers_below_a():
    # q = w: over one whole LFSR period every nonzero q-bit number appears once, so with delta at full
    # scale (b = 2**q - 1 fires unless R = 2**q - 1) the count of x with magnitude a is known exactly.
    w = 5
    cfg = EssopConfig(rows=1, cols=1, bl=32, q=w, lfsr_width=w, lfsr_steps=1, lfsr_seed_x=1, lfsr_seed_d=1,
                      lfsr_restart=True)
    x = np.array([[0.25]], F16)            # a = 0.25 * 2**(q - E_x) with E_x = -1: a = 2**(w-1) = 16
    d = np.array([[1.99]], F16)            # E_d = 1, b = floor(1.99 * 2**4) = 31 = 2**q - 1
    r = EssopArrayModel(cfg).process_group(x, d)
    # 31 states, values 1..31 once each, plus the 32nd cycle repeating state 0 (= seed 1).
    R = np.concatenate([np.arange(1, 32), [1]])   # as a multiset; the order does not matter for the count
    assert r.counts[0, 0] == int(np.sum((R < 16) & (R < 31)))


def test_signs_count_down_and_scale_back():
    cfg = EssopConfig(rows=2, cols=2, bl=1024, q=8)
    x = np.array([[1.0, -1.0]], F16)
    d = np.array([[1.0, -1.0]], F16)
    r = EssopArrayModel(cfg).process_group(x, d)
    s = np.sign(r.counts)
    assert np.array_equal(s, [[1, -1], [-1, 1]])
    # a = b = 2**(q-1): E[C] = BL / 4; value = C * 2**(1 + 1 - 10) ~ 1
    est = r.counts * 2.0 ** r.e_out
    assert np.all(np.abs(np.abs(est) - 1.0) < 0.25)
    assert np.array_equal(r.fp16.view(F16).astype(np.float64), est)


def test_nonfinite_inputs_poison_their_row_and_column():
    cfg = EssopConfig(rows=3, cols=3, bl=16)
    x = np.array([[1.0, np.inf, 0.5]], F16)
    d = np.array([[np.nan, 1.0, 2.0]], F16)
    r = EssopArrayModel(cfg).process_group(x, d)
    assert r.nonfinite
    nan = np.uint16(fp16.NAN16)
    assert np.all(r.fp16[0, :] == nan) and np.all(r.fp16[:, 1] == nan)
    assert not np.any(r.fp16[1:, [0, 2]] == nan)
    assert r.exp_x == 1 and r.exp_d == 2        # exponents ignore the non-finite elements


def test_zero_vectors_and_negative_zero_give_positive_zero():
    cfg = EssopConfig(rows=2, cols=2, bl=8)
    r = EssopArrayModel(cfg).process_group(np.array([[0.0, -0.0]], F16), np.array([[-0.0, 0.0]], F16))
    assert np.all(r.counts == 0) and np.all(r.fp16 == 0) and r.exp_x == -24 and not r.nonfinite


def test_block_exponent_too_small_saturates():
    cfg = EssopConfig(rows=1, cols=1, bl=8, acc_depth=2, scaling="block")
    r = EssopArrayModel(cfg).process_group(np.array([[4.0]], F16), np.array([[1.0]], F16), 0, 1)
    assert r.saturated


def test_run_splits_groups_at_last_and_at_acc_depth():
    cfg = EssopConfig(rows=2, cols=3, bl=4, acc_depth=3, scaling="block")
    rng = np.random.default_rng(0)
    x, d = _rand(rng, 7, 3, 2)
    last = [False, True, False, False, False, False, True]   # groups: 2, 3 (by depth), 2
    ex = [1, 9, 2, 9, 9, 3, 9]
    res = EssopArrayModel(cfg).run(x, d, last, ex, ex)
    assert [g.pairs for g in res] == [2, 3, 2]
    assert [g.exp_x for g in res] == [1, 2, 3]
    ref = EssopArrayModel(cfg)
    again = [ref.process_group(x[0:2], d[0:2], 1, 1), ref.process_group(x[2:5], d[2:5], 2, 2),
             ref.process_group(x[5:7], d[5:7], 3, 3)]
    assert all(np.array_equal(a.counts, b.counts) for a, b in zip(res, again))


@pytest.mark.parametrize("call, exc, message", [
    (lambda m: m.process_group(np.zeros((0, 2), F16), np.zeros((0, 2), F16)), ValueError,
     "a group needs at least one vector pair, got none"),
    (lambda m: m.process_group(np.zeros((1, 3), F16), np.zeros((1, 2), F16)), ValueError,
     "x vectors must have cols=2 elements, not 3"),
    (lambda m: m.process_group(np.zeros((1, 2), F16), np.zeros((2, 2), F16)), ValueError,
     "xs and ds must hold the same number of pairs, not 1 and 2"),
    (lambda m: m.process_group(np.zeros((2, 2), F16), np.zeros((2, 2), F16)), ValueError,
     "a group holds at most acc_depth=1 pairs, not 2"),
    (lambda m: m.process_group(np.zeros((1, 2), F16), np.zeros((1, 2), F16), 1, 1), ValueError,
     "exp_x/exp_d are inputs only with scaling='block'"),
])
def test_bad_input_is_named(call, exc, message):
    with pytest.raises(exc) as info:
        call(EssopArrayModel(EssopConfig(rows=2, cols=2)))
    assert str(info.value) == message

"""The random-number sources (spec §4, essop.golden.random_sources) against independent models: the Sobol points
against PyTorch's SobolEngine and the published direction numbers, their net property in every aligned block,
per-element digital shifts, the per-pair shift register stepped by hand, restart, and the LFSR source's
generators against hand-stepped registers."""
import numpy as np
import pytest
import torch

from essop import lfsr_params, sobol_params
from essop.config import EssopConfig
from essop.golden import random_sources as rs
from essop.golden.lfsr import Lfsr, states_after

#: m_1 .. m_16 of dimension 2 in new-joe-kuo-6.21201 (s = 1, a = 0, m_1 = 1), typed in from the recurrence's
#: published values: the rows of Pascal's triangle mod 2 read as binary numbers.
JOE_KUO_DIM2_M = (1, 3, 5, 15, 17, 51, 85, 255, 257, 771, 1285, 3855, 4369, 13107, 21845, 65535)


def test_direction_numbers_are_joe_and_kuos():
    assert sobol_params.m_values(2, 16) == JOE_KUO_DIM2_M
    assert sobol_params.m_values(1, 5) == (1, 1, 1, 1, 1)
    assert sobol_params.direction_words(2, 4) == (8, 12, 10, 15)
    with pytest.raises(ValueError, match=r"^no Sobol direction numbers for dimension 3; dimensions 1..2 are tabulated$"):
        sobol_params.m_values(3, 4)


@pytest.mark.parametrize("q", [1, 2, 5, 8, 12, 16])
def test_sobol_points_are_torch_sobol_engine_truncated_to_q_bits(q):
    """The first 2**q points of PyTorch's unscrambled 2-D SobolEngine (Joe-Kuo numbers, Gray-code order),
    floor(u * 2**q), are the x and delta sides' base sequences."""
    cfg = EssopConfig(q=q, rng="sobol", lfsr_width=max(q, 3), lfsr_seed_x=1, lfsr_seed_d=2)
    pts = torch.quasirandom.SobolEngine(2, scramble=False).draw(1 << q, dtype=torch.float64).numpy()
    want = np.floor(pts * (1 << q)).astype(np.int64)
    assert np.array_equal(rs.base_sequence(cfg, "x"), want[:, 0])
    assert np.array_equal(rs.base_sequence(cfg, "d"), want[:, 1])


def _naive_sobol(m, q, c):
    """Point c from the m values, natural-order definition on gray(c): XOR of m_k * 2**(q-k) over set bits."""
    g = c ^ (c >> 1)
    v = 0
    for k in range(1, q + 1):
        if g >> (k - 1) & 1:
            v ^= m[k - 1] << (q - k)
    return v


def test_sobol_numbers_depend_on_the_cycle_mod_2_to_the_q():
    cfg = EssopConfig(q=6, rng="sobol", bl=4)
    R = rs.random_numbers(cfg, "d", 300, 1000)[0]
    want = [_naive_sobol(JOE_KUO_DIM2_M, 6, c % 64) for c in range(1000, 1300)]
    assert np.array_equal(R, want)


@pytest.mark.parametrize("q", [6, 8])
def test_every_aligned_block_of_2_to_the_k_points_is_a_0_k_2_net(q):
    """(0, k, 2)-net in base 2 at q-bit resolution: the 2**k points of any aligned block put exactly one point
    in each elementary box [i 2**-a, (i+1) 2**-a) x [j 2**-b, (j+1) 2**-b) with a + b = k — also after any
    digital shift (per-element words, per-pair shifts)."""
    cfg = EssopConfig(q=q, rng="sobol")
    x, y = rs.base_sequence(cfg, "x"), rs.base_sequence(cfg, "d")
    rng = np.random.default_rng(1)
    for k in range(q + 1):
        for start in range(0, 1 << q, 1 << k):
            for sx, sy in ((0, 0), tuple(rng.integers(0, 1 << q, 2))):
                bx, by = x[start:start + (1 << k)] ^ sx, y[start:start + (1 << k)] ^ sy
                for a in range(k + 1):
                    cells = (bx >> (q - a)) * (1 << (k - a)) + (by >> (q - (k - a)))
                    assert np.array_equal(np.sort(cells), np.arange(1 << k)), (k, start, a)


def test_per_element_sobol_generators_are_distinct_digital_shifts():
    cfg = EssopConfig(q=5, rng="sobol", sharing="per_element", rows=40, cols=6, bl=8)
    Rx = rs.random_numbers(cfg, "x", 64, 40)
    Rd = rs.random_numbers(cfg, "d", 64, 40)
    base_x = rs.random_numbers(cfg.replace(sharing="shared"), "x", 64, 40)[0]
    base_d = rs.random_numbers(cfg.replace(sharing="shared"), "d", 64, 40)[0]
    for k in range(cfg.cols):
        assert np.array_equal(Rx[k], base_x ^ int(format(k, "05b")[::-1], 2))
    for k in range(cfg.rows):
        assert np.array_equal(Rd[k], base_d ^ int(format(k % 32, "05b")[::-1], 2))
    assert len(set(cfg.rng_words_d[:32])) == 32 and cfg.rng_words_d[32:] == cfg.rng_words_d[:8]


@pytest.mark.parametrize("shift", [False, True])
def test_lfsr_element_words_are_the_shared_registers_numbers_xor_bit_reversed_indices(shift):
    """element_words: one LFSR per side (the shared configuration's numbers) and element k's constant word, the
    bit-reversed k; with the per-pair shift, each pair's shift word on top, as for every source."""
    cfg = EssopConfig(q=5, sharing="per_element", element_words=True, rows=40, cols=6, bl=8, rng_shift=shift)
    shared = cfg.replace(sharing="shared", element_words=False)
    for side, count in (("x", cfg.cols), ("d", cfg.rows)):
        got = rs.random_numbers(cfg, side, 64, 40)
        base = rs.random_numbers(shared, side, 64, 40)[0]
        assert got.shape == (count, 64)
        for k in range(count):
            assert np.array_equal(got[k], base ^ int(format(k % 32, "05b")[::-1], 2))
    assert not rs.generator_offsets(cfg, "x").any()


@pytest.mark.parametrize("q", [1, 3, 8, 13])
def test_pair_words_come_from_the_shift_register_stepped_by_hand(q):
    """Pair p's words: the shift LFSR (XAPP052 taps of width max(2q, 3), rng_shift_steps shifts per pair) after
    p pairs; x = bits [0, q), delta = bits [q, 2q). q = 13 (width 26) takes the jump-ahead path."""
    cfg = EssopConfig(q=q, lfsr_width=max(q, 3), lfsr_seed_x=1, lfsr_seed_d=2, rng_shift=True,
                      rng_shift_seed=5, bl=4)
    reg = Lfsr(lfsr_params.taps(cfg.rng_shift_width), cfg.rng_shift_width, 5)
    want = []
    for _ in range(40):
        want.append(reg.state)
        reg.leap(cfg.rng_shift_steps)
    want = np.array(want)
    mask = (1 << q) - 1
    pairs = np.arange(40)
    assert np.array_equal(rs.pair_words(cfg, "x", pairs), want & mask)
    assert np.array_equal(rs.pair_words(cfg, "d", pairs), (want >> q) & mask)
    assert not rs.pair_words(cfg.replace(rng_shift=False), "x", pairs).any()
    # Far pair numbers: the tabulated period and the jump-ahead agree.
    far = np.array([0, 1, 12345, 10 ** 9, 3 * 10 ** 11])
    P = (1 << cfg.rng_shift_width) - 1
    jumped = states_after(cfg.rng_shift_taps, cfg.rng_shift_width, 5, (far % P) * cfg.rng_shift_steps)
    assert np.array_equal(rs.shift_states(cfg, far), jumped)


@pytest.mark.parametrize("rng", ["lfsr", "sobol"])
def test_random_numbers_compose_base_offsets_words_and_pair_words(rng):
    """R_k(c) = base[(c + offset_k) mod period] ^ word_k ^ pair_word(c div BL), cycle by cycle."""
    cfg = EssopConfig(q=6, rng=rng, sharing="per_element", rows=3, cols=4, bl=8, rng_shift=True,
                      lfsr_width=11, lfsr_seed_x=0x2A5, lfsr_seed_d=0x13)
    start = 8 * 977
    for side in ("x", "d"):
        R = rs.random_numbers(cfg, side, 80, start)
        base, off, words = rs.base_sequence(cfg, side), rs.generator_offsets(cfg, side), rs.generator_words(cfg, side)
        for k in range(R.shape[0]):
            for t in range(80):
                c = start + t
                pw = rs.pair_words(cfg, side, [c // 8])[0]
                assert R[k, t] == base[(c + off[k]) % len(base)] ^ words[k] ^ pw


def test_lfsr_per_element_generators_are_hand_stepped_registers_from_their_seeds():
    """Generator k of the LFSR source is a register started at the jump-ahead seed k, leaping S per cycle."""
    cfg = EssopConfig(q=5, sharing="per_element", rows=2, cols=3, lfsr_width=9, lfsr_seed_x=77, lfsr_seed_d=300)
    assert cfg.steps_per_cycle == 5
    for side, taps, seeds in (("x", cfg.lfsr_taps_x, cfg.lfsr_seeds_x), ("d", cfg.lfsr_taps_d, cfg.lfsr_seeds_d)):
        R = rs.random_numbers(cfg, side, 100)
        for k, seed in enumerate(seeds):
            reg, want = Lfsr(taps, 9, seed), []
            for _ in range(100):
                want.append(reg.state & 31)
                reg.leap(5)
            assert np.array_equal(R[k], want)


@pytest.mark.parametrize("rng", ["lfsr", "sobol"])
def test_restart_gives_every_pair_the_first_pairs_numbers(rng):
    cfg = EssopConfig(bl=8, rng=rng, rng_shift=True, lfsr_restart=True, sharing="per_element", rows=2, cols=2)
    first = rs.random_numbers(cfg.replace(lfsr_restart=False), "d", 8)
    R = rs.random_numbers(cfg, "d", 40, 16)
    assert np.array_equal(R.reshape(2, 5, 8), np.tile(first[:, None, :], (1, 5, 1)))


def test_bad_side():
    with pytest.raises(ValueError, match=r"^side must be 'x' or 'd', not 'y'$"):
        rs.random_numbers(EssopConfig(), "y", 4)

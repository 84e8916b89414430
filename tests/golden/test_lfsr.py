"""Golden LFSRs: full period, leap-forward, seeds placed where the config says."""
import numpy as np
import pytest

from essop import lfsr_params
from essop.config import EssopConfig
from essop.golden.lfsr import Lfsr
from essop.golden.random_sources import random_numbers


@pytest.mark.parametrize("width", [4, 7, 10, 13])
def test_shift_visits_every_nonzero_state_once(width):
    lfsr = Lfsr(lfsr_params.taps(width), width, 1)
    seen = {lfsr.state}
    for _ in range((1 << width) - 2):
        seen.add(lfsr.shift())
    assert len(seen) == (1 << width) - 1 and 0 not in seen
    assert lfsr.shift() == 1


def test_random_numbers_follow_one_lfsr_stepped_by_hand():
    cfg = EssopConfig(q=6, lfsr_steps=3, lfsr_width=11, lfsr_seed_x=5, lfsr_seed_d=9)
    for side, taps, seed in (("x", cfg.lfsr_taps_x, 5), ("d", cfg.lfsr_taps_d, 9)):
        lfsr = Lfsr(taps, 11, seed)
        expected = []
        for _ in range(200):
            expected.append(lfsr.state & 0x3F)
            lfsr.leap(3)
        assert np.array_equal(random_numbers(cfg, side, 200)[0], expected)
        assert np.array_equal(random_numbers(cfg, side, 50, start_cycle=150)[0], expected[150:])


def test_per_element_generators_start_on_the_jump_ahead_seeds():
    cfg = EssopConfig(rows=3, cols=6, sharing="per_element", lfsr_width=9, q=4, lfsr_seed_x=77, lfsr_seed_d=300)
    R = random_numbers(cfg, "x", 4)
    assert R.shape == (6, 4)
    for g, seed in enumerate(cfg.lfsr_seeds_x):
        lfsr = Lfsr(cfg.lfsr_taps_x, 9, cfg.lfsr_seed_x)
        lfsr.leap(g * cfg.phase_stride)
        assert lfsr.state == seed
        assert R[g, 0] == seed & 0xF


def test_restart_repeats_every_pair():
    cfg = EssopConfig(bl=8, lfsr_restart=True)
    R = random_numbers(cfg, "x", 32)[0]
    assert np.array_equal(R.reshape(4, 8), np.tile(R[:8], (4, 1)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="side must be 'x' or 'd', not 'y'"):
        random_numbers(EssopConfig(), "y", 4)
    with pytest.raises(ValueError, match=r"seed must be in \[1, 2\*\*5 - 1\], not 0"):
        Lfsr((5, 3), 5, 0)

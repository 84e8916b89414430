"""The XAPP052 table and its reciprocals are maximal length; jump-ahead equals stepping."""
import pytest

from essop import lfsr_params


def _period(taps, width):
    state, n = 1, 0
    mask = (1 << width) - 1
    while True:
        fb = 0
        for t in taps:
            fb ^= (state >> (t - 1)) & 1
        state = ((state << 1) | fb) & mask
        n += 1
        if state == 1:
            return n


@pytest.mark.parametrize("width", range(lfsr_params.MIN_WIDTH, 19))
def test_table_and_reciprocal_have_full_period(width):
    assert _period(lfsr_params.taps(width), width) == (1 << width) - 1
    assert _period(lfsr_params.reciprocal_taps(width), width) == (1 << width) - 1


def test_jump_equals_stepping():
    taps, width = lfsr_params.taps(12), 12
    state = 0x5A5
    for n in (0, 1, 7, 100, 4094, 4095, 10_000):
        s = state
        for _ in range(n):
            fb = 0
            for t in taps:
                fb ^= (s >> (t - 1)) & 1
            s = ((s << 1) | fb) & 0xFFF
        assert lfsr_params.jump(taps, width, state, n) == s


def test_unknown_width():
    with pytest.raises(ValueError, match="no maximal-length taps for LFSR width 40"):
        lfsr_params.taps(40)

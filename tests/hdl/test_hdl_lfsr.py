# amaranth: UnusedElaboratable=no
"""RTL Lfsr equals the golden Lfsr state for state over whole periods, leaps, enable and restart."""
import numpy as np
import pytest

from essop import lfsr_params
from essop.golden.lfsr import Lfsr as RefLfsr
from essop.hdl.lfsr import Lfsr
from hdl_harness import simulate

SEED = 20261126


def rtl_states(dut, controls):
    """State and o_rand in each cycle while applying (en, restart) per cycle."""
    out = []

    async def bench(ctx):
        for en, restart in controls:
            ctx.set(dut.en, en)
            ctx.set(dut.restart, restart)
            out.append((ctx.get(dut.o_state), ctx.get(dut.o_rand)))
            await ctx.tick()

    simulate(dut, bench)
    return out


def ref_states(taps, width, seed, steps, out_width, controls):
    ref, out = RefLfsr(taps, width, seed), []
    for en, restart in controls:
        out.append((ref.state, ref.state & ((1 << out_width) - 1)))
        if restart:
            ref.state = seed
        elif en:
            ref.leap(steps)
    return out


@pytest.mark.parametrize("width", [5, 6, 7, 8])
@pytest.mark.parametrize("taps_of", [lfsr_params.taps, lfsr_params.reciprocal_taps])
def test_full_period_single_step(width, taps_of):
    taps = taps_of(width)
    period = (1 << width) - 1
    dut = Lfsr(taps, width, 1, out_width=3)
    controls = [(1, 0)] * (period + 1)
    got = rtl_states(dut, controls)
    assert got == ref_states(taps, width, 1, 1, 3, controls)
    states = [s for s, _ in got]
    assert len(set(states[:period])) == period and states[period] == states[0]
    assert dut.period == period


@pytest.mark.parametrize("width,steps,out_width", [(5, 3, 3), (7, 7, 5), (8, 4, 4), (8, 11, 8), (16, 8, 8)])
def test_leap_forward_enable_restart(width, steps, out_width):
    rng = np.random.default_rng(SEED + width * 100 + steps)
    taps = lfsr_params.taps(width)
    seed = int(rng.integers(1, 1 << width))
    controls = [(int(rng.random() < 0.7), int(rng.random() < 0.05)) for _ in range(300)]
    dut = Lfsr(taps, width, seed, steps=steps, out_width=out_width)
    assert rtl_states(dut, controls) == ref_states(taps, width, seed, steps, out_width, controls)


def test_leap_covers_period_when_coprime():
    # 5 shifts per cycle on a period-31 register (gcd 1) visits every state once per 31 cycles.
    taps = lfsr_params.taps(5)
    dut = Lfsr(taps, 5, 7, steps=5)
    got = rtl_states(dut, [(1, 0)] * 31)
    assert sorted(s for s, _ in got) == list(range(1, 32))


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(taps=(5, 3), width=5.0, seed=1), TypeError, "width must be an int, not 5.0"),
    (dict(taps=(1,), width=1, seed=1), ValueError, "width must be in [2, 64], not 1"),
    (dict(taps=[5, 3], width=5, seed=1), TypeError, "taps must be a tuple of ints, not [5, 3]"),
    (dict(taps=(5, "3"), width=5, seed=1), TypeError, "tap must be an int, not '3'"),
    (dict(taps=(5, 6), width=5, seed=1), ValueError, "tap must be in [1, 5], not 6"),
    (dict(taps=(4, 3), width=5, seed=1), ValueError, "taps must include the width 5, not (4, 3)"),
    (dict(taps=(5, 3, 3), width=5, seed=1), ValueError, "taps must be distinct, not (5, 3, 3)"),
    (dict(taps=(5, 3), width=5, seed=0), ValueError, "seed must be in [1, 31], not 0"),
    (dict(taps=(5, 3), width=5, seed=True), TypeError, "seed must be an int, not True"),
    (dict(taps=(5, 3), width=5, seed=1, steps=0), ValueError, "steps must be in [1, 65536], not 0"),
    (dict(taps=(5, 3), width=5, seed=1, out_width=6), ValueError, "out_width must be in [1, 5], not 6"),
])
def test_parameter_errors(kwargs, exc, msg):
    with pytest.raises(exc) as info:
        Lfsr(kwargs.pop("taps"), kwargs.pop("width"), kwargs.pop("seed"), **kwargs)
    assert str(info.value) == msg

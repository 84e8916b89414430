# amaranth: UnusedElaboratable=no
"""RTL SobolGenerator equals the golden Sobol sequence (essop.golden.random_sources) point for point over whole
periods, with random enable and restart; its parameters are checked."""
import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden.random_sources import base_sequence
from essop.hdl.random_sources import SobolGenerator
from hdl_harness import simulate

SEED = 20261130


def rtl_points(dut, controls):
    out = []

    async def bench(ctx):
        for en, restart in controls:
            ctx.set(dut.en, en)
            ctx.set(dut.restart, restart)
            out.append((ctx.get(dut.o_count), tuple(ctx.get(p) for p in dut.o_point)))
            await ctx.tick()

    simulate(dut, bench)
    return out


def ref_points(cfg, controls):
    bx, bd = base_sequence(cfg, "x"), base_sequence(cfg, "d")
    c, out = 0, []
    for en, restart in controls:
        out.append((c, (int(bx[c]), int(bd[c]))))
        c = 0 if restart else (c + en) % (1 << cfg.q)
    return out


@pytest.mark.parametrize("q", [1, 2, 5, 8])
def test_full_period_and_wrap(q):
    cfg = EssopConfig(q=q, rng="sobol", lfsr_width=max(q, 3), lfsr_seed_x=1, lfsr_seed_d=2)
    dut = SobolGenerator(q, (cfg.sobol_directions_x, cfg.sobol_directions_d))
    controls = [(1, 0)] * (2 * dut.period + 3)
    assert rtl_points(dut, controls) == ref_points(cfg, controls)
    assert dut.period == cfg.rng_period


@pytest.mark.parametrize("q", [4, 12, 16])
def test_enable_and_restart(q):
    rng = np.random.default_rng(SEED + q)
    cfg = EssopConfig(q=q, rng="sobol")
    dut = SobolGenerator(q, (cfg.sobol_directions_x, cfg.sobol_directions_d))
    controls = [(int(rng.random() < 0.8), int(rng.random() < 0.03)) for _ in range(400)]
    assert rtl_points(dut, controls) == ref_points(cfg, controls)


@pytest.mark.parametrize("args,exc,msg", [
    ((0, ((),)), ValueError, "q must be in [1, 32], not 0"),
    ((2, [(1, 2)]), TypeError, "directions must be a non-empty tuple of tuples, not [(1, 2)]"),
    ((2, ()), TypeError, "directions must be a non-empty tuple of tuples, not ()"),
    ((2, ((1,),)), ValueError, "each dimension needs a tuple of q = 2 direction words, not (1,)"),
    ((2, ((1, 4),)), ValueError, "direction word must be in [0, 3], not 4"),
])
def test_parameter_errors(args, exc, msg):
    with pytest.raises(exc) as info:
        SobolGenerator(*args)
    assert str(info.value) == msg

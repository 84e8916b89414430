# amaranth: UnusedElaboratable=no
"""SignReadout holds a pair's signs on en, moves the delta signs up one row per shift (a shift wins over en),
and puts out row 0's magnitudes signed by held sign_x[j] XOR held sign_d[0] — against a plain Python model
over a random control sequence."""
import numpy as np
import pytest

from essop.config import EssopConfig
from essop.hdl.sign_readout import SignReadout
from hdl_harness import pack, simulate

SEED = 20261129


def ref_readout(cfg, steps):
    sx, sd, out = [0] * cfg.cols, [0] * cfg.rows, []
    for en, shift, in_sx, in_sd, mags in steps:
        out.append([-m if sx[j] ^ sd[0] else m for j, m in enumerate(mags)])
        if shift:
            sd = sd[1:] + [0]
        elif en:
            sx, sd = list(in_sx), list(in_sd)
    return out


def rtl_readout(cfg, steps):
    dut = SignReadout(cfg)
    out = []

    async def bench(ctx):
        for en, shift, in_sx, in_sd, mags in steps:
            ctx.set(dut.i_en, en)
            ctx.set(dut.i_shift, shift)
            ctx.set(dut.i_sign_x, pack(in_sx, 1))
            ctx.set(dut.i_sign_d, pack(in_sd, 1))
            for j, v in enumerate(mags):
                ctx.set(dut.i_mags[j], int(v))
            out.append([ctx.get(dut.o_counts[j]) for j in range(cfg.cols)])
            await ctx.tick()

    simulate(dut, bench)
    return out


@pytest.mark.parametrize("cfg", [EssopConfig(rows=1, cols=1, bl=2, cell="upcount"),
                                 EssopConfig(rows=5, cols=3, bl=16, cell="upcount")], ids=lambda c: c.name)
def test_random_control_sequence(cfg):
    rng = np.random.default_rng(SEED + cfg.rows)
    steps = [(int(rng.random() < 0.4), int(rng.random() < 0.3), [int(v) for v in rng.integers(0, 2, cfg.cols)],
              [int(v) for v in rng.integers(0, 2, cfg.rows)], [int(v) for v in rng.integers(0, cfg.bl + 1, cfg.cols)])
             for _ in range(400)]
    got = rtl_readout(cfg, steps)
    assert got == ref_readout(cfg, steps)
    assert any(v < 0 for row in got for v in row) and any(v == cfg.bl for row in got for v in row)


def test_refuses_up_down_cells():
    with pytest.raises(ValueError) as info:
        SignReadout(EssopConfig())
    assert str(info.value) == "SignReadout is for cell='upcount', not 'updown'"

# amaranth: UnusedElaboratable=no
"""CellGrid counts the golden model's group counts — sum over the group's bitstream cycles of sign-weighted
D_i(t) AND X_j(t) (counts_reference) — read out row by row through row 0 by shifting, which leaves it cleared
for the next group; cycles without i_en count nothing, a shift wins over i_en, the counters reach +-BL *
acc_depth without wrapping, and a product reaches the counters `latency` cycles after its bitstream cycle."""
import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden import fp16 as ref_fp16
from essop.golden.array import counts_reference
from essop.golden.random_sources import random_numbers
from essop.hdl.cell_grid import CellGrid
from hdl_harness import make_stream, pack, simulate

SEED = 20261126


def golden_bitstreams(cfg, xs, ds, exp_x, exp_d, start_pair):
    """The golden model's bitstreams of a group: X [P * BL, n], D [P * BL, m] and signs [P, n], [P, m]."""
    P = len(xs)
    a, sx, _, _ = ref_fp16.to_magnitudes(xs, exp_x, cfg.q)
    b, sd, _, _ = ref_fp16.to_magnitudes(ds, exp_d, cfg.q)
    rx = random_numbers(cfg, "x", P * cfg.bl, start_pair * cfg.bl).reshape(-1, P, cfg.bl)
    rd = random_numbers(cfg, "d", P * cfg.bl, start_pair * cfg.bl).reshape(-1, P, cfg.bl)
    X = (np.moveaxis(rx, 0, -1) < a[:, None, :]).reshape(P * cfg.bl, cfg.cols)
    D = (np.moveaxis(rd, 0, -1) < b[:, None, :]).reshape(P * cfg.bl, cfg.rows)
    return X.astype(int), D.astype(int), sx, sd


def ref_grid(cfg, groups):
    """Golden counts [m, n] of each group (xs, ds, exp_x, exp_d), the LFSRs running on across groups."""
    out, start = [], 0
    for xs, ds, ex, ed in groups:
        out.append(counts_reference(cfg, xs, ds, ex, ed, start)[0])
        start += len(xs)
    return out


def set_bits(ctx, dut, x, d, sx, sd):
    """One bitstream cycle's inputs of a CellGrid: the bits, and the signs where the grid has them."""
    ctx.set(dut.i_bit_x, pack(x, 1))
    ctx.set(dut.i_bit_d, pack(d, 1))
    if dut.config.cell == "updown":    # an up-counting grid has no sign inputs
        ctx.set(dut.i_sign_x, pack(sx, 1))
        ctx.set(dut.i_sign_d, pack(sd, 1))


def rtl_grid(cfg, streams, *, idle=0.0, seed=0):
    """Drive each group's bitstreams (X [T, n], D [T, m], signs per bitstream cycle [T, n], [T, m]) with random
    idle cycles (i_en low, random bits: probability `idle`), then shift the rows out; i_en is high with random
    bits during the shifts. Returns each group's counts [m, n] as read from o_counts."""
    dut = CellGrid(cfg)
    rng = np.random.default_rng(seed)
    n, m = cfg.cols, cfg.rows
    out = []

    def bits(ctx, x, d, sx, sd):
        set_bits(ctx, dut, x, d, sx, sd)

    def junk(ctx):
        bits(ctx, rng.integers(0, 2, n), rng.integers(0, 2, m), rng.integers(0, 2, n), rng.integers(0, 2, m))

    async def bench(ctx):
        for X, D, SX, SD in streams:
            for t in range(len(X)):
                while rng.random() < idle:
                    ctx.set(dut.i_en, 0)
                    junk(ctx)
                    await ctx.tick()
                ctx.set(dut.i_en, 1)
                bits(ctx, X[t], D[t], SX[t], SD[t])
                await ctx.tick()
            ctx.set(dut.i_en, 0)
            await ctx.tick()
            rows = []
            for _ in range(m):
                rows.append([ctx.get(dut.o_counts[j]) for j in range(n)])
                ctx.set(dut.i_shift, 1)
                ctx.set(dut.i_en, 1)
                junk(ctx)
                await ctx.tick()
                ctx.set(dut.i_shift, 0)
                ctx.set(dut.i_en, 0)
            out.append(np.array(rows))
        # Read out, the grid holds zeros.
        assert all(ctx.get(dut.o_counts[j]) == 0 for j in range(n))

    simulate(dut, bench)
    return out


def golden_groups(cfg, groups):
    """Each group's bitstreams from the golden model, signs repeated over the pair's BL cycles."""
    streams, start = [], 0
    for xs, ds, ex, ed in groups:
        X, D, sx, sd = golden_bitstreams(cfg, xs, ds, ex, ed, start)
        streams.append((X, D, np.repeat(sx, cfg.bl, axis=0), np.repeat(sd, cfg.bl, axis=0)))
        start += len(xs)
    return streams


def stream_groups(cfg, P, rng, special_rate=0.0):
    """Groups of realistic pairs, as make_stream forms them, with their exponents."""
    xs, ds, last, exp_x, exp_d = make_stream(cfg, P, rng, special_rate=special_rate)
    groups, start = [], 0
    for p in range(P):
        if last[p] or p - start + 1 == cfg.acc_depth:
            ex = ref_fp16.vector_exponent(xs[start]) if exp_x is None else int(exp_x[start])
            ed = ref_fp16.vector_exponent(ds[start]) if exp_d is None else int(exp_d[start])
            groups.append((xs[start:p + 1], ds[start:p + 1], ex, ed))
            start = p + 1
    return groups


@pytest.mark.parametrize("cfg", [
    EssopConfig(rows=1, cols=1, bl=4),
    EssopConfig(rows=3, cols=5, bl=8),
    EssopConfig(rows=5, cols=3, bl=8, sharing="per_element"),
    EssopConfig(rows=4, cols=3, bl=16, acc_depth=3, scaling="block", q=5),
    EssopConfig(rows=3, cols=5, bl=8, clock_gating=True),
    EssopConfig(rows=4, cols=3, bl=16, acc_depth=3, scaling="block", q=5, clock_gating=True),
], ids=lambda c: c.name)
def test_equals_golden_counts(cfg):
    rng = np.random.default_rng(SEED + cfg.rows * 10 + cfg.cols)
    groups = stream_groups(cfg, 6, rng, special_rate=0.05)
    got = rtl_grid(cfg, golden_groups(cfg, groups), idle=0.3, seed=SEED)
    want = ref_grid(cfg, groups)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), f"group {k}"
    assert any(np.any(w != 0) for w in want)


def test_realistic_default_size():
    """The default 16 x 16, BL 16: groups of one realistic pair each."""
    cfg = EssopConfig()
    rng = np.random.default_rng(SEED)
    groups = stream_groups(cfg, 3, rng)
    got = rtl_grid(cfg, golden_groups(cfg, groups), idle=0.1, seed=SEED)
    for g, w in zip(got, ref_grid(cfg, groups)):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("acc_depth", [1, 3])
def test_counter_limits(acc_depth):
    """All-ones bitstreams for BL * acc_depth cycles, the signs chosen per cell: +-BL * acc_depth, the largest
    counts the configuration allows, without wrapping (count_width is sized for them)."""
    cfg = EssopConfig(rows=2, cols=3, bl=8, acc_depth=acc_depth, scaling="block")
    T = cfg.bl * acc_depth
    sx, sd = np.array([0, 1, 0]), np.array([0, 1])
    stream = (np.ones((T, 3), dtype=int), np.ones((T, 2), dtype=int), np.tile(sx, (T, 1)), np.tile(sd, (T, 1)))
    got = rtl_grid(cfg, [stream, stream])
    want = T * (1 - 2 * (sd[:, None] ^ sx[None, :]))
    assert np.array_equal(got[0], want) and np.array_equal(got[1], want)
    assert abs(want).max() == T and T < 1 << (cfg.count_width - 1)


def test_latency():
    """A product is in the counter (row 0 on o_counts) `latency` cycles after its bitstream cycle."""
    cfg = EssopConfig(rows=2, cols=2, bl=4)
    dut = CellGrid(cfg)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i_bit_x, 0b11)
        ctx.set(dut.i_bit_d, 0b11)
        ctx.set(dut.i_en, 1)
        for cycle in range(4):
            seen.append(ctx.get(dut.o_counts[0]))
            await ctx.tick()
            ctx.set(dut.i_en, 0)

    simulate(dut, bench)
    assert seen.index(1) == dut.latency and seen[dut.latency:] == [1] * (4 - dut.latency)


def test_properties():
    cfg = EssopConfig(rows=3, cols=5, bl=64, acc_depth=2, scaling="block")
    dut = CellGrid(cfg)
    assert len(dut.o_counts) == 5 and all(len(c) == cfg.count_width for c in dut.o_counts)
    assert len(dut.i_bit_x) == 5 and len(dut.i_bit_d) == 3


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        CellGrid("16x16")
    assert str(info.value) == "cfg must be an EssopConfig, not '16x16'"


@pytest.mark.parametrize("cfg", [
    EssopConfig(rows=3, cols=5, bl=8, cell="upcount"),
    EssopConfig(rows=4, cols=2, bl=16, sharing="per_element", scaling="block", cell="upcount"),
], ids=lambda c: c.name)
def test_upcount_grid_counts_magnitudes(cfg):
    """Up-counting cells hold |count| of each one-pair group, unsigned and BL at most (the sign is applied
    outside the grid, by SignReadout)."""
    dut = CellGrid(cfg)
    assert not hasattr(dut, "i_sign_x") and not dut.o_counts[0].shape().signed
    assert dut.o_counts[0].shape().width == cfg.cell_count_width == cfg.bl_log2 + 1
    rng = np.random.default_rng(SEED + 7)
    groups = stream_groups(cfg, 6, rng)
    got = rtl_grid(cfg, golden_groups(cfg, groups), idle=0.3, seed=SEED)
    want = ref_grid(cfg, groups)
    for k, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, np.abs(w)), f"group {k}"
    assert any(np.any(w < 0) for w in want) and any(np.any(w > 0) for w in want)


def rtl_shadow_grid(cfg, streams, *, seed=0):
    """As rtl_grid, through the shadow bank: after each group one capture cycle (i_en high with junk bits: the
    capture wins), then the group's rows are shifted out of the bank, one on each random cycle, while the next
    group's bitstreams count. Returns each group's counts [m, n] as read from o_counts."""
    dut = CellGrid(cfg)
    rng = np.random.default_rng(seed)
    n, m = cfg.cols, cfg.rows
    out = []

    def bits(ctx, x, d, sx, sd):
        set_bits(ctx, dut, x, d, sx, sd)

    def read_row(ctx, rows):
        rows.append([ctx.get(dut.o_counts[j]) for j in range(n)])
        ctx.set(dut.i_shift, 1)

    async def bench(ctx):
        # Each capture banks the group before it (the first banks the cleared counters); the last group is
        # banked by one more capture with no bitstreams after it.
        for group in streams + [None]:
            ctx.set(dut.i_capture, 1)
            ctx.set(dut.i_en, 1)
            bits(ctx, rng.integers(0, 2, n), rng.integers(0, 2, m), rng.integers(0, 2, n), rng.integers(0, 2, m))
            await ctx.tick()
            ctx.set(dut.i_capture, 0)
            ctx.set(dut.i_en, 0)
            rows = []
            X, D, SX, SD = group if group is not None else ([],) * 4
            for t in range(len(X)):
                ctx.set(dut.i_en, 1)
                bits(ctx, X[t], D[t], SX[t], SD[t])
                if len(rows) < m and rng.random() < 0.5:
                    read_row(ctx, rows)
                await ctx.tick()
                ctx.set(dut.i_shift, 0)
            ctx.set(dut.i_en, 0)
            # The bank must be all read before the next capture.
            while len(rows) < m:
                read_row(ctx, rows)
                await ctx.tick()
                ctx.set(dut.i_shift, 0)
            out.append(np.array(rows))
        out.pop(0)

    simulate(dut, bench)
    return out


@pytest.mark.parametrize("cfg", [
    EssopConfig(rows=3, cols=5, bl=8, readout="shadow"),
    EssopConfig(rows=6, cols=2, bl=4, acc_depth=3, scaling="block", readout="shadow"),
    EssopConfig(rows=4, cols=3, bl=16, cell="upcount", readout="shadow"),
    # Gated rows: only live rows are clocked by the capture's clear.
    EssopConfig(rows=4, cols=3, bl=8, readout="shadow", clock_gating=True),
    EssopConfig(rows=3, cols=4, bl=4, cell="upcount", readout="shadow", clock_gating=True),
], ids=lambda c: c.name)
def test_shadow_bank_reads_out_while_the_next_group_counts(cfg):
    """Capture copies the counts into the bank and clears the counters (winning over i_en); the bank shifts out
    through row 0 while the counters count the next group, untouched by it. Up-counting cells: magnitudes."""
    rng = np.random.default_rng(SEED + cfg.rows)
    groups = stream_groups(cfg, 6, rng)
    want = ref_grid(cfg, groups)
    if cfg.cell == "upcount":
        want = [np.abs(w) for w in want]
    got = rtl_shadow_grid(cfg, golden_groups(cfg, groups), seed=SEED)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), f"group {k}"


@pytest.mark.parametrize("cell", ["updown", "upcount"])
def test_clock_gating_rows_that_never_count(cell):
    """Gated rows skip read-out shifts only while they and the row below hold zeros: rows 0 and 2 never
    count (their delta bits stay 0) and must still carry rows 1 and 3 up; a group with only row 3 counting,
    then an all-zero group, then a full one."""
    cfg = EssopConfig(rows=4, cols=3, bl=8, cell=cell, clock_gating=True)
    rng = np.random.default_rng(SEED + 7)
    T = cfg.bl

    def group(live_rows):
        X = rng.integers(0, 2, (T, 3))
        D = np.zeros((T, 4), dtype=int)
        D[:, live_rows] = rng.integers(0, 2, (T, len(live_rows)))
        D[0, live_rows] = 1
        X[0] = 1
        return X, D, np.zeros((T, 3), dtype=int), np.zeros((T, 4), dtype=int)

    streams = [group([1, 3]), group([3]), group([]), group([0, 1, 2, 3])]
    got = rtl_grid(cfg, streams, idle=0.2, seed=SEED)
    for g, (X, D, _, _) in zip(got, streams):
        assert np.array_equal(g, D.T @ X)
    assert np.all(got[0][[0, 2]] == 0) and np.all(got[0][[1, 3]] > 0) and np.all(got[2] == 0)

# amaranth: UnusedElaboratable=no
"""OutputStage puts out what the golden model makes of a group's counts (group_result): every row, FP16 with
NaN where a row or column is poisoned (or the signed counts), E_out and the group's flags, rows 0..m-1 with
o_last on the last, under back-pressure; flags and poison last one group. It loads row 0 when the cell grid
holds the counts, offers it `latency` cycles later, puts out beats_per_group rows and releases the bitstreams
release_latency cycles after the last is taken."""
import numpy as np
import pytest

from essop.config import EXP_PORT_MAX, EXP_PORT_MIN, MAX_ACC_DEPTH, EssopConfig
from essop.golden import fp16 as ref_fp16
from essop.golden.array import EssopArrayModel, group_result
from essop.hdl.cell_grid import CellGrid
from essop.hdl.output_stage import OutputStage
from hdl_harness import make_stream, pack, simulate, unpack

SEED = 20261126


def group(cfg, counts, exp_x, exp_d, pairs):
    """A group as the output stage sees it: counts [m, n], exponents and, per pair, (nonfinite_x [n],
    nonfinite_d [m], saturated)."""
    return {"counts": np.asarray(counts, dtype=np.int64), "exp_x": int(exp_x), "exp_d": int(exp_d),
            "pairs": [(np.asarray(nx, dtype=bool), np.asarray(nd, dtype=bool), bool(s)) for nx, nd, s in pairs]}


def clean_pairs(cfg, k=1):
    return [(np.zeros(cfg.cols), np.zeros(cfg.rows), False)] * k


def ref_output(cfg, g):
    """(rows of o_data elements [m][n], E_out, nonfinite, saturated) from the golden model."""
    rows = np.any([nd for _, nd, _ in g["pairs"]], axis=0)
    cols = np.any([nx for nx, _, _ in g["pairs"]], axis=0)
    sat = any(s for _, _, s in g["pairs"])
    res = group_result(cfg, g["counts"], g["exp_x"], g["exp_d"], rows, cols, sat, len(g["pairs"]))
    data = res.fp16 if cfg.output_format == "fp16" else res.counts
    return [[int(v) for v in row] for row in data], res.e_out, res.nonfinite, res.saturated


def rtl_output(cfg, groups, *, stall=0.0, seed=0):
    """Feed each group's pairs as bitstream cycles (2 or 3 per pair, flags on the first, i_done on the last,
    i_end on the group's last pair) whenever o_busy is low, model the cell grid behind i_counts (the group's
    rows from the cycle after its last bitstream cycle, shifted up on o_shift; random counts before), and take
    rows with random back-pressure (probability `stall`). Returns per group (rows, E_out, nonfinite,
    saturated), its timing — the cycles of its last bitstream cycle, the row-0 load (first o_shift), the first
    offer of row 0, every beat, the first cycle with o_busy low after its last beat — and o_busy per cycle."""
    dut = OutputStage(cfg)
    rng = np.random.default_rng(seed)
    n, m, cw, ew = cfg.cols, cfg.rows, cfg.count_width, dut.data_element_width
    signed_data = cfg.output_format == "count"
    results, timing, busy_log = [], [], []

    async def bench(ctx):
        cycle = 0
        feed = []                # the pair inputs of the coming bitstream cycles
        fed = 0                  # groups fed so far
        grid = None              # the modelled counter rows, row 0 first
        beats = []
        cur = {"done": None, "load": None, "offer": None, "beats": [], "release": None}
        while len(results) < len(groups):
            busy = ctx.get(dut.o_busy)
            if cur["beats"] and len(cur["beats"]) == m and not busy and cur["release"] is None:
                cur["release"] = cycle
                timing.append(cur)
                cur = {"done": None, "load": None, "offer": None, "beats": [], "release": None}
            busy_log.append(busy)
            if not busy and not feed and fed < len(groups):
                g = groups[fed]
                for k, (nx, nd, sat) in enumerate(g["pairs"]):
                    length = int(rng.integers(2, 4))
                    for t in range(length):
                        feed.append({"first": t == 0, "done": t == length - 1,
                                     "end": k == len(g["pairs"]) - 1 and t == length - 1,
                                     "nx": nx, "nd": nd, "sat": sat, "exp_x": g["exp_x"], "exp_d": g["exp_d"]})
                fed += 1
            step = feed.pop(0) if feed and not busy else None
            ctx.set(dut.i_first, bool(step and step["first"]))
            ctx.set(dut.i_done, bool(step and step["done"]))
            ctx.set(dut.i_end, bool(step and step["end"]))
            # Pair inputs other than the strobes hold junk outside bitstream cycles.
            nx = step["nx"] if step else rng.integers(0, 2, n)
            nd = step["nd"] if step else rng.integers(0, 2, m)
            ctx.set(dut.i_nonfinite_x, pack(nx, 1))
            ctx.set(dut.i_nonfinite_d, pack(nd, 1))
            ctx.set(dut.i_saturated, bool(step["sat"]) if step else int(rng.integers(0, 2)))
            ctx.set(dut.i_group_exp_x, step["exp_x"] if step else int(rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1)))
            ctx.set(dut.i_group_exp_d, step["exp_d"] if step else int(rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1)))
            row0 = grid[0] if grid is not None else rng.integers(-(1 << (cw - 2)), 1 << (cw - 2), n)
            for j in range(n):
                ctx.set(dut.i_counts[j], int(row0[j]))
            ready = bool(rng.random() >= stall)
            ctx.set(dut.o_ready, ready)
            shift = ctx.get(dut.o_shift)
            if shift and cur["load"] is None:
                cur["load"] = cycle
            if ctx.get(dut.o_valid) and cur["offer"] is None:
                cur["offer"] = cycle
            if ctx.get(dut.o_valid) and ready:
                cur["beats"].append(cycle)
                beats.append((ctx.get(dut.o_row), unpack(ctx.get(dut.o_data), ew, n, signed_data),
                              ctx.get(dut.o_exp), ctx.get(dut.o_last), ctx.get(dut.o_nonfinite),
                              ctx.get(dut.o_saturated)))
                if len(beats) == m:
                    assert [b[0] for b in beats] == list(range(m))
                    assert [b[3] for b in beats] == [0] * (m - 1) + [1]
                    assert all(b[2:3] + b[4:] == beats[0][2:3] + beats[0][4:] for b in beats)
                    results.append(([b[1] for b in beats], beats[0][2], bool(beats[0][4]), bool(beats[0][5])))
                    beats = []
            await ctx.tick()
            cycle += 1
            if grid is not None and shift:
                grid = grid[1:] + [np.zeros(n, dtype=np.int64)]
            if step and step["end"]:
                cur["done"] = cycle - 1
                grid = list(groups[fed - 1]["counts"])
        # The last group's release.
        for _ in range(4):
            if not ctx.get(dut.o_busy):
                break
            await ctx.tick()
            cycle += 1
        cur["release"] = cycle
        timing.append(cur)

    simulate(dut, bench)
    return results, timing, busy_log


def check(cfg, groups, **kwargs):
    got, timing, busy = rtl_output(cfg, groups, **kwargs)
    want = [ref_output(cfg, g) for g in groups]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"group {k}"
    dut = OutputStage(cfg)
    for k, t in enumerate(timing):
        # Row 0 is loaded when the cell grid holds the group's counts; then the stage's own latencies.
        assert t["load"] - t["done"] == CellGrid(cfg).latency, f"group {k}"
        assert t["offer"] - t["load"] == dut.latency, f"group {k}"
        assert len(t["beats"]) == dut.beats_per_group, f"group {k}"
        assert t["release"] - t["beats"][-1] == dut.release_latency, f"group {k}"
        # Busy, so the bitstreams pause, from the load until the release.
        assert all(busy[t["load"]:t["release"]]) and not any(busy[t["done"]:t["load"]]), f"group {k}"
    return got, want, timing


CONFIGS = {
    "1x1 fp16": EssopConfig(rows=1, cols=1, bl=4),
    "3x5 count": EssopConfig(rows=3, cols=5, bl=8, output_format="count"),
    "4x3 block acc3 fp16": EssopConfig(rows=4, cols=3, bl=16, acc_depth=3, scaling="block"),
    "2x4 block acc2 count lr -32": EssopConfig(rows=2, cols=4, bl=4, acc_depth=2, scaling="block",
                                               output_format="count", lr_shift=-32),
    "3x2 fp16 lr 32": EssopConfig(rows=3, cols=2, bl=2, lr_shift=32),
    "2x2 bl1024 max acc": EssopConfig(rows=2, cols=2, bl=1024, acc_depth=MAX_ACC_DEPTH, scaling="block"),
}


def edge_groups(cfg, rng):
    """Zeros, the counter limits at the extreme exponents, random counts, and poison and saturation arriving
    on a later pair of a group, followed by a clean group."""
    m, n = cfg.rows, cfg.cols
    top = (1 << (cfg.count_width - 1)) - 1
    k = min(cfg.acc_depth, 3)
    poison_x = np.zeros(n, dtype=bool)
    poison_x[n // 2] = True
    poison_d = np.zeros(m, dtype=bool)
    poison_d[m - 1] = True
    limits = np.resize(np.array([top, -top, 1, -1, 0]), (m, n))
    rand = rng.integers(-top, top + 1, (m, n)) >> rng.integers(0, cfg.count_width, (m, n))
    return [
        group(cfg, np.zeros((m, n)), EXP_PORT_MIN, EXP_PORT_MIN, clean_pairs(cfg)),
        group(cfg, limits, EXP_PORT_MAX, EXP_PORT_MAX, clean_pairs(cfg, k)),
        group(cfg, limits, EXP_PORT_MIN, EXP_PORT_MAX, clean_pairs(cfg)),
        group(cfg, rand, 0, -5, clean_pairs(cfg, k - 1) + [(poison_x, np.zeros(m), True)]),
        group(cfg, rand, 3, -20, [(np.zeros(n), poison_d, False)] + clean_pairs(cfg, k - 1)),
        group(cfg, -rand, -3, -3, clean_pairs(cfg)),
    ]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_edge_groups(name):
    cfg = CONFIGS[name]
    seed = SEED + sum(map(ord, name))
    rng = np.random.default_rng(seed)
    groups = edge_groups(cfg, rng)
    _, want, _ = check(cfg, groups, stall=0.4, seed=seed)
    assert [w[2] for w in want] == [False, False, False, True, True, False]
    assert [w[3] for w in want] == [False, False, False, True, False, False]


@pytest.mark.parametrize("output_format", ["fp16", "count"])
def test_realistic_default_size(output_format):
    """The default 16 x 16: the golden model's groups of realistic pairs with a few specials, per-pair flags
    from its magnitude conversion; the output equals EssopArrayModel.run's."""
    cfg = EssopConfig(output_format=output_format)
    rng = np.random.default_rng(SEED)
    xs, ds, last, _, _ = make_stream(cfg, 4, rng, special_rate=0.02)
    groups, p = [], 0
    results = EssopArrayModel(cfg).run(xs, ds, last)
    for res in results:
        pairs = []
        for _ in range(res.pairs):
            _, _, nfx, satx = ref_fp16.to_magnitudes(xs[p], res.exp_x, cfg.q)
            _, _, nfd, satd = ref_fp16.to_magnitudes(ds[p], res.exp_d, cfg.q)
            pairs.append((nfx, nfd, bool(satx.any() or satd.any())))
            p += 1
        groups.append(group(cfg, res.counts, res.exp_x, res.exp_d, pairs))
    got, _, _ = check(cfg, groups, stall=0.3, seed=SEED)
    for (rows, e_out, nonfinite, saturated), res in zip(got, results):
        data = res.fp16 if output_format == "fp16" else res.counts
        assert np.array_equal(np.array(rows, dtype=np.int64), data.astype(np.int64))
        assert (e_out, nonfinite, saturated) == (res.e_out, res.nonfinite, res.saturated)


def test_no_back_pressure_beats_back_to_back():
    cfg = EssopConfig(rows=5, cols=2, bl=4)
    rng = np.random.default_rng(SEED)
    _, _, timing = check(cfg, edge_groups(cfg, rng))
    for t in timing:
        assert t["beats"] == list(range(t["beats"][0], t["beats"][0] + OutputStage(cfg).beats_per_group))


def test_properties():
    cfg = EssopConfig(rows=5, cols=3, bl=32, output_format="count", acc_depth=6, scaling="block")
    dut = OutputStage(cfg)
    assert dut.row_width == 3 and len(dut.o_row) == dut.row_width
    assert len(dut.o_data) == cfg.cols * cfg.count_width == cfg.cols * dut.data_element_width
    assert len(dut.o_exp) == cfg.out_exp_width and len(dut.i_counts) == cfg.cols
    assert OutputStage(EssopConfig(rows=1, cols=2)).row_width == 1
    assert OutputStage(EssopConfig(rows=4, cols=2)).data_element_width == 16


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        OutputStage(3)
    assert str(info.value) == "cfg must be an EssopConfig, not 3"

# amaranth: UnusedElaboratable=no
"""InputStage offers every pair as the golden model sees it — q-bit magnitudes, signs, non-finite bits and the
saturated flag against the group's exponents (per_pair: the vector exponents; block: the group's first pair's
port exponents), and the end of each accumulation group — in order, whatever the idle input cycles and however
long the consumer holds a pair; a pair is offered `latency` cycles after its transfer into an idle stage, and
the cycle after the previous pair is taken when it was waiting."""
import numpy as np
import pytest
from amaranth.hdl import Fragment

from essop.config import EXP_PORT_MAX, EXP_PORT_MIN, EssopConfig
from essop.golden import fp16 as ref_fp16
from essop.golden.array import EssopArrayModel
from essop.hdl.fp16_input import max_depth
from essop.hdl.input_stage import InputStage
from hdl_harness import EDGE_VECTORS, cycle_counter, make_stream, pair_driver, simulate, unpack

SEED = 20261126
ALL = np.arange(1 << 16, dtype=np.uint16)
FIELDS = ("mag_x", "mag_d", "sign_x", "sign_d", "nonfinite_x", "nonfinite_d", "saturated", "exp_x", "exp_d", "end")


def ref_input(cfg, xs, ds, last, exp_x=None, exp_d=None):
    """Each pair as the golden model streams it: a dict of FIELDS."""
    groups = EssopArrayModel(cfg).run(xs, ds, last, exp_x, exp_d)
    out, p = [], 0
    for g in groups:
        for k in range(g.pairs):
            a, sx, nfx, satx = ref_fp16.to_magnitudes(xs[p], g.exp_x, cfg.q)
            b, sd, nfd, satd = ref_fp16.to_magnitudes(ds[p], g.exp_d, cfg.q)
            out.append({"mag_x": [int(v) for v in a], "mag_d": [int(v) for v in b],
                        "sign_x": [int(v) for v in sx], "sign_d": [int(v) for v in sd],
                        "nonfinite_x": [int(v) for v in nfx], "nonfinite_d": [int(v) for v in nfd],
                        "saturated": int(satx.any() or satd.any()), "exp_x": g.exp_x, "exp_d": g.exp_d,
                        "end": int(k == g.pairs - 1)})
            p += 1
    return out


def rtl_input(cfg, xs, ds, last, exp_x=None, exp_d=None, *, idle=0.0, hold=(1, 1), seed=0):
    """Stream the pairs into InputStage(cfg) with random idle input cycles (probability `idle`); the consumer
    takes each offered pair after a random number of cycles in [hold[0], hold[1]]. Returns the pairs taken
    (dicts of FIELDS) and the cycles of each transfer in, first offer and take."""
    dut = InputStage(cfg)
    rng = np.random.default_rng(seed)
    P = len(xs)
    n, m, q = cfg.cols, cfg.rows, cfg.q
    got, accepts, offers, takes = [], [], [], []
    cycle, clock_counter = cycle_counter()
    driver = pair_driver(dut, xs, ds, last, exp_x, exp_d, rng=rng, idle=idle, cycle=cycle, accepts=accepts)

    async def consumer(ctx):
        waited = 0
        wait = int(rng.integers(hold[0], hold[1] + 1))
        while len(got) < P:
            valid = ctx.get(dut.o_pair_valid)
            if valid and len(offers) == len(got):
                offers.append(cycle[0])
            waited += valid
            done = valid and waited == wait
            ctx.set(dut.i_pair_done, done)
            if done:
                got.append({
                    "mag_x": unpack(ctx.get(dut.o_mag_x), q, n), "mag_d": unpack(ctx.get(dut.o_mag_d), q, m),
                    "sign_x": unpack(ctx.get(dut.o_sign_x), 1, n), "sign_d": unpack(ctx.get(dut.o_sign_d), 1, m),
                    "nonfinite_x": unpack(ctx.get(dut.o_nonfinite_x), 1, n),
                    "nonfinite_d": unpack(ctx.get(dut.o_nonfinite_d), 1, m),
                    "saturated": ctx.get(dut.o_pair_saturated), "exp_x": ctx.get(dut.o_exp_x),
                    "exp_d": ctx.get(dut.o_exp_d), "end": ctx.get(dut.o_end)})
                takes.append(cycle[0])
                waited = 0
                wait = int(rng.integers(hold[0], hold[1] + 1))
            await ctx.tick()
        ctx.set(dut.i_pair_done, 0)

    simulate(dut, driver, consumer, processes=[clock_counter])
    return got, accepts, offers, takes


def check(cfg, xs, ds, last, exp_x=None, exp_d=None, **kwargs):
    got, accepts, offers, takes = rtl_input(cfg, xs, ds, last, exp_x, exp_d, **kwargs)
    want = ref_input(cfg, xs, ds, last, exp_x, exp_d)
    assert len(got) == len(want)
    for p, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"pair {p}"
    # Latency, measured: a pair is offered `latency` cycles after its transfer, or the cycle after the pair
    # before it is taken, whichever is later.
    dut = InputStage(cfg)
    assert offers[0] - accepts[0] == dut.latency
    for p in range(1, len(offers)):
        assert offers[p] == max(takes[p - 1] + 1, accepts[p] + dut.latency), f"pair {p}"
    return got, want, accepts, offers, takes


def vectors(rng, count, k):
    """k random patterns, every edge vector resized to `count`, and k realistic vectors (one scale each)."""
    out = [rng.choice(ALL, count) for _ in range(k)]
    out += [np.resize(np.array(v, dtype=np.uint16), count) for v in EDGE_VECTORS]
    out += [(rng.standard_normal(count) * 2.0 ** rng.integers(-26, 13)).astype(np.float16).view(np.uint16)
            for _ in range(k)]
    return np.array(out, dtype=np.uint16)


# per_pair: the max trees split after exponent_split_levels levels (0 for one element up to 3 at 33).
PER_PAIR = {
    "1x1": EssopConfig(rows=1, cols=1, bl=2, q=4),
    "5x5 q1": EssopConfig(rows=5, cols=5, bl=2, q=1, lfsr_width=3, lfsr_seed_x=5, lfsr_seed_d=3),
    "16x1 q16": EssopConfig(rows=16, cols=1, bl=2, q=16),
    "3x16": EssopConfig(rows=3, cols=16, bl=2),
    "2x33": EssopConfig(rows=2, cols=33, bl=2),
}


@pytest.mark.parametrize("name", list(PER_PAIR))
def test_per_pair_exponents_and_magnitudes(name):
    """Every pair's E_x, E_d is its vector exponent; edge, random and realistic vectors on both sides."""
    cfg = PER_PAIR[name]
    rng = np.random.default_rng(SEED + sum(map(ord, name)))
    xs = vectors(rng, cfg.cols, 30)
    ds = vectors(rng, cfg.rows, 30)[rng.permutation(len(xs))]
    got, *_ = check(cfg, xs, ds, np.ones(len(xs), dtype=bool), idle=0.3, hold=(1, 4), seed=SEED)
    assert [g["exp_x"] for g in got] == [ref_fp16.vector_exponent(v) for v in xs]
    assert [g["exp_d"] for g in got] == [ref_fp16.vector_exponent(v) for v in ds]


@pytest.mark.parametrize("cfg", [
    EssopConfig(rows=3, cols=5, bl=2, scaling="block"),
    EssopConfig(rows=4, cols=3, bl=2, acc_depth=3, scaling="block", q=5),
    EssopConfig(rows=2, cols=7, bl=2, acc_depth=4, scaling="block", q=16),
], ids=lambda c: c.name)
def test_block_exponents_held_for_the_group(cfg):
    """A group uses its first pair's port exponents (later pairs' are ignored) and ends at i_last or after
    acc_depth pairs; port exponents at both ends of their range."""
    rng = np.random.default_rng(SEED + cfg.acc_depth)
    xs = vectors(rng, cfg.cols, 10)
    ds = vectors(rng, cfg.rows, 10)[rng.permutation(len(xs))]
    P = len(xs)
    exp_x = rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1, P)
    exp_d = rng.integers(EXP_PORT_MIN, EXP_PORT_MAX + 1, P)
    exp_x[:4] = [EXP_PORT_MIN, EXP_PORT_MAX, 0, -1]
    exp_d[:4] = [EXP_PORT_MAX, EXP_PORT_MIN, -1, 0]
    last = rng.random(P) < 0.3
    last[-1] = True
    got, want, *_ = check(cfg, xs, ds, last, exp_x, exp_d, idle=0.3, hold=(1, 3), seed=SEED)
    assert any(w["saturated"] for w in want) and any(w["nonfinite_x"] for w in want)
    if cfg.acc_depth > 1:
        assert any(not w["end"] for w in want)


def test_back_to_back_pairs_have_no_gap():
    """No idle input, the consumer takes each pair in its second offered cycle (a BL 2 bitstream, the shortest):
    the next pair is offered in the very next cycle, every time."""
    cfg = EssopConfig(rows=2, cols=3, bl=2, acc_depth=3, scaling="block")
    rng = np.random.default_rng(SEED)
    xs, ds, last, exp_x, exp_d = make_stream(cfg, 9, rng)
    *_, offers, takes = check(cfg, xs, ds, last, exp_x, exp_d, hold=(2, 2))
    assert offers[1:] == [t + 1 for t in takes[:-1]]
    assert takes == [o + 1 for o in offers]


@pytest.mark.parametrize("scaling", ["per_pair", "block"])
def test_idle_stage_latency(scaling):
    """Pairs that enter an idle stage (the one before already taken) are offered exactly `latency` cycles after
    their transfer."""
    cfg = EssopConfig(rows=3, cols=4, bl=2, scaling=scaling)
    rng = np.random.default_rng(SEED)
    xs, ds, last, exp_x, exp_d = make_stream(cfg, 12, rng, last_rate=1.0)
    *_, accepts, offers, takes = check(cfg, xs, ds, last, exp_x, exp_d, idle=0.9, hold=(1, 1), seed=SEED)
    idle_entries = [p for p in range(len(xs)) if p == 0 or takes[p - 1] < accepts[p]]
    assert len(idle_entries) > 3
    assert all(offers[p] - accepts[p] == InputStage(cfg).latency for p in idle_entries)


def test_realistic_default_size():
    """The default 16 x 16 (per_pair) on realistic activations and errors with a few specials, the consumer
    holding each pair for BL cycles."""
    cfg = EssopConfig()
    rng = np.random.default_rng(SEED)
    xs, ds, last, _, _ = make_stream(cfg, 8, rng, special_rate=0.02, last_rate=1.0)
    check(cfg, xs, ds, last, idle=0.2, hold=(cfg.bl, cfg.bl), seed=SEED)


@pytest.mark.parametrize("rows,cols", [(1, 1), (16, 16), (32, 32), (2, 33), (16, 3)])
def test_exponent_trees_split_in_half(rows, cols):
    """per_pair: the register after exponent_split_levels levels cuts the deeper tree in half (the levels after
    it at most one more than those before, which share their cycle with the decoders)."""
    dut = InputStage(EssopConfig(rows=rows, cols=cols))
    blocks = {name: sub.origins[0] for sub, name, *_ in Fragment.get(dut, None).subfragments}
    levels = dut.exponent_split_levels
    assert blocks["part_x"].levels == blocks["part_d"].levels == levels
    before = max(max_depth(cols), max_depth(rows))
    after = max(blocks["max_x"].depth, blocks["max_d"].depth)
    assert levels + after == before and after - levels in (0, 1)


def test_properties():
    cfg = EssopConfig(rows=3, cols=5, q=6)
    dut = InputStage(cfg)
    assert len(dut.o_mag_x) == 5 * 6 and len(dut.o_mag_d) == 3 * 6
    assert len(dut.i_x) == cfg.x_width and len(dut.i_delta) == cfg.delta_width
    assert len(dut.i_exp_x) == len(dut.o_exp_x) == cfg.exp_port_width


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        InputStage({"rows": 2})
    assert str(info.value) == "cfg must be an EssopConfig, not {'rows': 2}"

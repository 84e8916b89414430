# amaranth: UnusedElaboratable=no
"""BitstreamGenerators give the golden model's bitstreams — X_j(t) = R_x,j(t) < a_j, D_i(t) = R_d,i(t) < b_i
from the golden LFSR sequences, shared or per element, running on across pairs or restarted — bit for bit, on
bitstream cycles only (idle and held cycles advance nothing); each pair has cycles_per_pair bitstream cycles,
first and last marked, starting `latency` cycles after it is offered; it builds cfg.n_generators LFSRs, or one
Sobol counter; Sobol sources (shared, per-element digital shifts) and the per-pair shift as well."""
import numpy as np
import pytest
from amaranth.hdl import Fragment

from essop.config import EssopConfig
from essop.golden import fp16 as ref_fp16
from essop.golden.random_sources import random_numbers
from essop.hdl.bitstreams import BitstreamGenerators
from essop.hdl.lfsr import Lfsr
from essop.hdl.random_sources import SobolGenerator
from hdl_harness import make_stream, pack, simulate, unpack

SEED = 20261126


def ref_bitstreams(cfg, mag_x, mag_d):
    """X [P, BL, n], D [P, BL, m] (0/1) of pairs streamed one after another from reset."""
    P = len(mag_x)
    rx = random_numbers(cfg, "x", P * cfg.bl).reshape(-1, P, cfg.bl)      # [1 or n, P, BL]
    rd = random_numbers(cfg, "d", P * cfg.bl).reshape(-1, P, cfg.bl)
    X = np.moveaxis(rx, 0, -1) < np.asarray(mag_x)[:, None, :]
    D = np.moveaxis(rd, 0, -1) < np.asarray(mag_d)[:, None, :]
    return X.astype(int), D.astype(int)


def rtl_bitstreams(cfg, mag_x, mag_d, *, idle=0.0, hold=0.0, seed=0):
    """Offer each pair's magnitudes until its last bitstream cycle, after random idle cycles (probability
    `idle`, nothing offered), with i_hold high on random cycles (probability `hold`). Returns X, D as in
    ref_bitstreams, and per pair: the cycle it was first offered, whether i_hold was high then, and the cycles
    of its bitstream cycles, o_first and o_done."""
    dut = BitstreamGenerators(cfg)
    rng = np.random.default_rng(seed)
    P, n, m, q = len(mag_x), cfg.cols, cfg.rows, cfg.q
    X, D, pairs = [], [], []

    async def bench(ctx):
        cycle = 0
        for p in range(P):
            while rng.random() < idle:
                ctx.set(dut.i_pair_valid, 0)
                ctx.set(dut.i_hold, int(rng.random() < hold))
                assert not ctx.get(dut.o_en) and not ctx.get(dut.o_first) and not ctx.get(dut.o_done)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i_mag_x, pack(mag_x[p], q))
            ctx.set(dut.i_mag_d, pack(mag_d[p], q))
            ctx.set(dut.i_pair_valid, 1)
            rec = {"offered": cycle, "held_then": None, "en": [], "first": [], "done": []}
            xs, ds = [], []
            while not rec["done"]:
                held = int(rng.random() < hold)
                ctx.set(dut.i_hold, held)
                if rec["held_then"] is None:
                    rec["held_then"] = bool(held)
                for key, port in (("en", dut.o_en), ("first", dut.o_first), ("done", dut.o_done)):
                    if ctx.get(port):
                        rec[key].append(cycle)
                if ctx.get(dut.o_en):
                    xs.append(unpack(ctx.get(dut.o_bit_x), 1, n))
                    ds.append(unpack(ctx.get(dut.o_bit_d), 1, m))
                await ctx.tick()
                cycle += 1
            X.append(xs)
            D.append(ds)
            pairs.append(rec)
        ctx.set(dut.i_pair_valid, 0)

    simulate(dut, bench)
    return np.array(X), np.array(D), pairs


def magnitudes(cfg, xs, ds):
    """q-bit magnitudes of stream pairs against their own vector exponents (golden)."""
    mx = [ref_fp16.to_magnitudes(v, ref_fp16.vector_exponent(v), cfg.q)[0] for v in xs]
    md = [ref_fp16.to_magnitudes(v, ref_fp16.vector_exponent(v), cfg.q)[0] for v in ds]
    return np.array(mx), np.array(md)


def check(cfg, mag_x, mag_d, **kwargs):
    X, D, pairs = rtl_bitstreams(cfg, mag_x, mag_d, **kwargs)
    want_x, want_d = ref_bitstreams(cfg, mag_x, mag_d)
    assert np.array_equal(X, want_x) and np.array_equal(D, want_d)
    dut = BitstreamGenerators(cfg)
    for p, rec in enumerate(pairs):
        assert len(rec["en"]) == dut.cycles_per_pair, f"pair {p}"
        assert rec["first"] == rec["en"][:1] and rec["done"] == rec["en"][-1:], f"pair {p}"
        if not rec["held_then"]:
            assert rec["en"][0] - rec["offered"] == dut.latency, f"pair {p}"
    return X, D, pairs


CONFIGS = {
    "shared": EssopConfig(rows=3, cols=5, bl=8),
    "per_element": EssopConfig(rows=5, cols=3, bl=8, sharing="per_element"),
    "per_element restart": EssopConfig(rows=3, cols=5, bl=8, sharing="per_element", lfsr_restart=True),
    # (Was lfsr_steps=3: 3 divides 2**6 - 1 = 63, which EssopConfig now refuses; 5 is coprime, still != q.)
    "restart steps5 q4 w6 bl2": EssopConfig(rows=3, cols=2, bl=2, lfsr_restart=True, lfsr_steps=5, q=4,
                                            lfsr_width=6, lfsr_seed_x=0x2B, lfsr_seed_d=0x11),
    "q16 w16 bl32": EssopConfig(rows=1, cols=2, bl=32, q=16),
    "q1 w3 per_element": EssopConfig(rows=2, cols=1, bl=8, q=1, lfsr_width=3, lfsr_seed_x=5, lfsr_seed_d=3,
                                     sharing="per_element"),
    "steps1 w12 bl32": EssopConfig(rows=2, cols=2, bl=32, q=8, lfsr_steps=1, lfsr_width=12, lfsr_seed_x=0x5A5,
                                   lfsr_seed_d=0x3C3),
    "default steps q6": EssopConfig(rows=2, cols=3, bl=16, q=6),          # the step rule: 7 shifts, not 6
    "lfsr shift per_element": EssopConfig(rows=3, cols=2, bl=4, sharing="per_element", rng_shift=True),
    "lfsr element_words": EssopConfig(rows=5, cols=3, bl=8, sharing="per_element", element_words=True),
    "lfsr element_words shift restart q6": EssopConfig(rows=3, cols=4, bl=4, q=6, sharing="per_element",
                                                       element_words=True, rng_shift=True, lfsr_restart=True),
    "sobol shared": EssopConfig(rows=3, cols=5, bl=8, rng="sobol"),
    "sobol per_element shift q6": EssopConfig(rows=5, cols=3, bl=4, q=6, sharing="per_element", rng="sobol",
                                              rng_shift=True, rng_shift_seed=0x1ABC),
    "sobol restart shift q3 bl2": EssopConfig(rows=2, cols=3, bl=2, q=3, rng="sobol", rng_shift=True,
                                              lfsr_restart=True, sharing="per_element"),
    "sobol q4 bl32 (BL > 2**q)": EssopConfig(rows=2, cols=2, bl=32, q=4, rng="sobol"),
    "sobol q16 bl32": EssopConfig(rows=1, cols=2, bl=32, q=16, rng="sobol", rng_shift=True),
    "sobol q1 per_element": EssopConfig(rows=2, cols=1, bl=8, q=1, lfsr_width=3, lfsr_seed_x=5, lfsr_seed_d=3,
                                        sharing="per_element", rng="sobol", rng_shift=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_edge_magnitudes(name):
    """Magnitudes 0 (never a 1), 1, 2**q - 1 (a 1 except when R is all ones) and random ones, with idle and
    held cycles between and inside pairs."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(SEED + sum(map(ord, name)))
    top = (1 << cfg.q) - 1
    P = 10
    mag_x = rng.integers(0, top + 1, (P, cfg.cols))
    mag_d = rng.integers(0, top + 1, (P, cfg.rows))
    for k, v in enumerate((0, 1, top)):
        mag_x[k], mag_d[k] = v, v
    mag_x[3], mag_d[3] = top, 0
    X, D, _ = check(cfg, mag_x, mag_d, idle=0.3, hold=0.3, seed=SEED)
    assert not X[0].any() and not D[0].any()
    assert X.any() and D.any()


def test_realistic_default_size():
    """The default 16 x 16, BL 16, shared: magnitudes of realistic pairs, the bitstreams pausing as for a
    read-out."""
    cfg = EssopConfig()
    rng = np.random.default_rng(SEED)
    xs, ds, *_ = make_stream(cfg, 6, rng)
    check(cfg, *magnitudes(cfg, xs, ds), idle=0.5, hold=0.2, seed=SEED)


def test_back_to_back_pairs():
    """Pairs offered back to back with no hold: one bitstream cycle every cycle, each pair's first the cycle
    after the previous pair's last."""
    cfg = EssopConfig(rows=2, cols=3, bl=4, sharing="per_element")
    rng = np.random.default_rng(SEED)
    xs, ds, *_ = make_stream(cfg, 5, rng)
    _, _, pairs = check(cfg, *magnitudes(cfg, xs, ds))
    cycles = [c for rec in pairs for c in rec["en"]]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))


@pytest.mark.parametrize("sharing,words,count", [("shared", False, 2), ("per_element", False, 3 + 5),
                                                 ("per_element", True, 2)])
def test_lfsr_count(sharing, words, count):
    """Two LFSRs for the whole array when shared or with element words, one per element (rows + cols)
    otherwise, each seeded as the configuration says."""
    cfg = EssopConfig(rows=5, cols=3, sharing=sharing, element_words=words)
    assert cfg.n_generators == count
    frag = Fragment.get(BitstreamGenerators(cfg), None)
    lfsrs = [sub.origins[0] for sub, *_ in frag.subfragments if isinstance(sub.origins[0], Lfsr)]
    assert len(lfsrs) == cfg.n_generators
    assert [g.seed for g in lfsrs] == list(cfg.lfsr_seeds_x + cfg.lfsr_seeds_d)
    assert BitstreamGenerators(cfg).n_generators == count


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_sobol_builds_one_counter_and_the_shift_register(sharing):
    """The Sobol source is one SobolGenerator (both sides' dimensions) and no LFSR, whatever the sharing; the
    per-pair shift adds one LFSR of rng_shift_width bits seeded with rng_shift_seed."""
    for shift in (False, True):
        cfg = EssopConfig(rows=5, cols=3, sharing=sharing, rng="sobol", rng_shift=shift, rng_shift_seed=77)
        dut = BitstreamGenerators(cfg)
        frag = Fragment.get(dut, None)
        subs = [sub.origins[0] for sub, *_ in frag.subfragments]
        sobols = [g for g in subs if isinstance(g, SobolGenerator)]
        lfsrs = [g for g in subs if isinstance(g, Lfsr)]
        assert len(sobols) == 1 and sobols[0].directions == (cfg.sobol_directions_x, cfg.sobol_directions_d)
        assert [(g.width, g.seed, g.steps) for g in lfsrs] == \
            ([(cfg.rng_shift_width, 77, cfg.rng_shift_steps)] if shift else [])
        assert dut.n_generators == 1 + shift


def test_properties():
    cfg = EssopConfig(rows=3, cols=5, bl=64, q=6)
    dut = BitstreamGenerators(cfg)
    assert dut.cycles_per_pair == cfg.bl
    assert len(dut.i_mag_x) == 5 * 6 and len(dut.o_bit_x) == 5 and len(dut.o_bit_d) == 3


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        BitstreamGenerators(None)
    assert str(info.value) == "cfg must be an EssopConfig, not None"

"""Drive EssopArray through the Amaranth simulator and return what its output stream carried, as plain
Python values, for comparison with essop.golden.array.EssopArrayModel; the input streams the array and its
stages' tests share."""
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from essop.config import EXP_PORT_MAX, EXP_PORT_MIN
from essop.golden import fp16 as ref_fp16
from essop.hdl.array import EssopArray


@dataclass
class RtlGroup:
    data: list          # [m][n] ints: fp16 patterns or signed counts
    e_out: int
    nonfinite: bool
    saturated: bool
    rows: list          # o_row of each beat, in order
    lasts: list         # o_last of each beat


#: Five-element FP16 vectors at the edges of the exponent rule and the magnitude decoders (resized to any length).
EDGE_VECTORS = [
    [0x0000] * 5,                                   # all zero: E = EXP_MIN
    [0x8000, 0x0000, 0x8000, 0x0000, 0x8000],      # signed zeros
    [0x0001, 0x0000, 0x8001, 0x0002, 0x03FF],      # subnormals only
    [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFFFF],      # all non-finite: E = EXP_MIN, magnitudes 0
    [0x7BFF, 0x0001, 0xFBFF, 0x3C00, 0x7C00],      # largest finite next to smallest subnormal and Inf
    [0x3C00, 0x3BFF, 0x3800, 0x3555, 0x0400],      # 1.0 sets E = 1; just below 1.0; 0.5; smallest normal
]

SPECIALS = np.array([0x7C00, 0xFC00, 0x7E00, 0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0x0400], dtype=np.uint16)


def make_stream(cfg, P, rng, special_rate=0.0, last_rate=0.4):
    """P pairs of ReLU-like activations and small signed errors, some elements replaced by specials."""
    scale_x = 2.0 ** rng.integers(-6, 6, (P, 1))
    scale_d = 2.0 ** rng.integers(-20, -4, (P, 1))
    xs = (np.maximum(rng.standard_normal((P, cfg.cols)), 0) * scale_x).astype(np.float16).view(np.uint16)
    ds = (rng.standard_normal((P, cfg.rows)) * scale_d).astype(np.float16).view(np.uint16)
    for arr in (xs, ds):
        hit = rng.random(arr.shape) < special_rate
        arr[hit] = rng.choice(SPECIALS, hit.sum())
    last = rng.random(P) < last_rate
    last[-1] = True
    exp_x = exp_d = None
    if cfg.scaling == "block":
        # Around each pair's own exponent: too small saturates, too large loses resolution.
        exp_x = np.array([ref_fp16.vector_exponent(v) for v in xs]) + rng.integers(-2, 3, P)
        exp_d = np.array([ref_fp16.vector_exponent(v) for v in ds]) + rng.integers(-2, 3, P)
        exp_x = np.clip(exp_x, EXP_PORT_MIN, EXP_PORT_MAX)
        exp_d = np.clip(exp_d, EXP_PORT_MIN, EXP_PORT_MAX)
    return xs, ds, last, exp_x, exp_d


def pack(values, width):
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (k * width)
    return word


def unpack(word, width, count, signed=False):
    out = []
    for k in range(count):
        v = (word >> (k * width)) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def simulate(dut, *testbenches, processes=(), clock=1e-6, trace=None):
    """Run the testbenches (and background processes) on dut to their end, with a clock of period `clock`
    seconds (None: a combinational design, no clock); `trace`: a VCD path to write."""
    sim = Simulator(dut)
    if clock is not None:
        sim.add_clock(clock)
    for process in processes:
        sim.add_process(process)
    for bench in testbenches:
        sim.add_testbench(bench)
    if trace:
        with sim.write_vcd(trace):
            sim.run()
    else:
        sim.run()


def cycle_counter():
    """A one-element list that counts clock edges and the simulator process that advances it."""
    cycle = [0]

    async def clock_counter(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    return cycle, clock_counter


def pair_driver(dut, xs, ds, last, exp_x, exp_d, *, rng, idle, cycle, accepts):
    """A testbench that streams the pairs into the array's input ports (which its input stage shares), with a
    random idle cycle before a pair with probability `idle`; it appends the cycle of each transfer to `accepts`."""
    async def driver(ctx):
        for p in range(len(xs)):
            while rng.random() < idle:
                ctx.set(dut.i_valid, 0)
                await ctx.tick()
            ctx.set(dut.i_x, pack(xs[p], 16))
            ctx.set(dut.i_delta, pack(ds[p], 16))
            if exp_x is not None:
                ctx.set(dut.i_exp_x, int(exp_x[p]))
                ctx.set(dut.i_exp_d, int(exp_d[p]))
            ctx.set(dut.i_last, bool(last[p]))
            ctx.set(dut.i_valid, 1)
            await ctx.tick().until(dut.i_ready)
            accepts.append(cycle[0] - 1)
        ctx.set(dut.i_valid, 0)

    return driver


def rtl_run(cfg, xs, ds, last, exp_x=None, exp_d=None, *, idle=0.0, stall=0.0, seed=0, trace=None):
    """Stream pairs (xs uint16 [P, n], ds [P, m], last [P]) into EssopArray(cfg) with random idle input
    cycles (probability `idle`) and output back-pressure (probability `stall` of o_ready low); return
    the list of RtlGroup and the cycle of every input transfer and output beat. `trace`: a VCD path."""
    dut = EssopArray(cfg)
    rng = np.random.default_rng(seed)
    P = len(xs)
    ends = [bool(v) for v in last]
    groups, beats, accepts = [], [], []
    # How many groups the stream forms (groups also end after acc_depth pairs).
    count, n_groups = 0, 0
    for p in range(P):
        count += 1
        if ends[p] or count == cfg.acc_depth:
            n_groups, count = n_groups + 1, 0
    total_rows = n_groups * cfg.rows
    ew = dut.data_element_width
    signed_data = cfg.output_format == "count"
    cycle, clock_counter = cycle_counter()
    driver = pair_driver(dut, xs, ds, ends, exp_x, exp_d, rng=rng, idle=idle, cycle=cycle, accepts=accepts)

    async def monitor(ctx):
        cur = []
        while len(beats) < total_rows:
            ready = not (rng.random() < stall)
            ctx.set(dut.o_ready, ready)
            *_, valid, row, data, e, lst, nf, sat = await ctx.tick().sample(
                dut.o_valid, dut.o_row, dut.o_data, dut.o_exp, dut.o_last, dut.o_nonfinite, dut.o_saturated)
            if valid and ready:
                beats.append(cycle[0] - 1)
                cur.append((row, unpack(data, ew, cfg.cols, signed_data), e, lst, nf, sat))
                if len(cur) == cfg.rows:
                    groups.append(RtlGroup(
                        data=[c[1] for c in cur], e_out=cur[0][2], nonfinite=bool(cur[0][4]),
                        saturated=bool(cur[0][5]), rows=[c[0] for c in cur], lasts=[bool(c[3]) for c in cur]))
                    # Every beat of a group carries the group's exponent and flags.
                    assert all(c[2] == cur[0][2] and c[4] == cur[0][4] and c[5] == cur[0][5] for c in cur)
                    cur = []

    simulate(dut, driver, monitor, processes=[clock_counter], trace=trace)
    return groups, accepts, beats

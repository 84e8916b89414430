# amaranth: UnusedElaboratable=no
"""EssopArray in the Amaranth simulator equals EssopArrayModel.run bit for bit — counts or FP16, E_out and
flags of every group — with idle input cycles and output back-pressure; its timing properties hold."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from essop.config import EXP_PORT_MAX, MAX_ACC_DEPTH, EssopConfig
from essop.golden.array import EssopArrayModel
from essop.hdl import TOP_NAME, verilog
from essop.hdl.array import EssopArray
from hdl_harness import make_stream, rtl_run

SEED = 20261126


def check_against_model(cfg, xs, ds, last, exp_x, exp_d, **run_kwargs):
    groups, accepts, beats = rtl_run(cfg, xs, ds, last, exp_x, exp_d, **run_kwargs)
    want = EssopArrayModel(cfg).run(xs, ds, last, exp_x, exp_d)
    assert len(groups) == len(want)
    for k, (g, w) in enumerate(zip(groups, want)):
        data = w.fp16 if cfg.output_format == "fp16" else w.counts
        assert np.array_equal(np.array(g.data, dtype=np.int64), data.astype(np.int64)), f"group {k}"
        assert (g.e_out, g.nonfinite, g.saturated) == (w.e_out, w.nonfinite, w.saturated), f"group {k}"
        assert g.rows == list(range(cfg.rows))
        assert g.lasts == [False] * (cfg.rows - 1) + [True]
    return groups, want, accepts, beats


CONFIGS = {
    "1x1": EssopConfig(rows=1, cols=1, bl=4),
    "3x5 count": EssopConfig(rows=3, cols=5, bl=8, output_format="count"),
    "5x3 per_element": EssopConfig(rows=5, cols=3, bl=8, sharing="per_element"),
    "3x5 per_element restart count": EssopConfig(rows=3, cols=5, bl=8, sharing="per_element",
                                                 lfsr_restart=True, output_format="count"),
    "4x3 block acc3 count": EssopConfig(rows=4, cols=3, bl=16, acc_depth=3, scaling="block",
                                        output_format="count"),
    "2x7 block acc3 fp16 q5 w9 lr": EssopConfig(rows=2, cols=7, bl=16, acc_depth=3, scaling="block", q=5,
                                                lfsr_width=9, lfsr_seed_x=0x1AB, lfsr_seed_d=0x0F3, lr_shift=-3),
    # (Was lfsr_steps=3, which shares the factor 3 with 2**6 - 1 and is refused now; 5 is coprime.)
    "3x2 restart steps5 bl2": EssopConfig(rows=3, cols=2, bl=2, lfsr_restart=True, lfsr_steps=5, q=4,
                                          lfsr_width=6, lfsr_seed_x=0x2B, lfsr_seed_d=0x11),
    "3x5 sobol count": EssopConfig(rows=3, cols=5, bl=8, rng="sobol", output_format="count"),
    "4x3 sobol per_element shift block acc3": EssopConfig(rows=4, cols=3, bl=4, q=6, rng="sobol", rng_shift=True,
                                                          sharing="per_element", acc_depth=3, scaling="block"),
    # LFSR element words: one register per side, a constant XOR word per element.
    "4x5 per_element element_words": EssopConfig(rows=4, cols=5, bl=8, sharing="per_element", element_words=True),
    "3x4 element_words shift block acc2 count": EssopConfig(rows=3, cols=4, bl=4, q=6, sharing="per_element",
                                                            element_words=True, rng_shift=True, acc_depth=2,
                                                            scaling="block", output_format="count"),
    "2x3 lfsr shift restart count": EssopConfig(rows=2, cols=3, bl=8, rng_shift=True, lfsr_restart=True,
                                                output_format="count"),
    "1x4 per_element block acc2": EssopConfig(rows=1, cols=4, bl=4, sharing="per_element", acc_depth=2,
                                              scaling="block", lr_shift=4),
    # The corners of EssopConfig: widest counters, q = lfsr_width, longest bitstream, largest up-scale...
    "1x2 q16 bl1024 max acc": EssopConfig(rows=1, cols=2, bl=1024, q=16, acc_depth=MAX_ACC_DEPTH,
                                          scaling="block", lr_shift=-32),
    # ... and the narrowest: 1-bit magnitudes, a 3-bit LFSR per element, largest down-scale, block acc 1.
    "2x1 q1 w3 per_element": EssopConfig(rows=2, cols=1, bl=8, q=1, lfsr_width=3, lfsr_seed_x=5,
                                         lfsr_seed_d=3, sharing="per_element", lr_shift=32, scaling="block"),
    # Up-counting cells, the sign applied at read-out: the same results as the up/down cells' in every case.
    "1x1 upcount": EssopConfig(rows=1, cols=1, bl=4, cell="upcount"),
    "4x5 upcount count": EssopConfig(rows=4, cols=5, bl=8, output_format="count", cell="upcount"),
    "5x3 per_element upcount": EssopConfig(rows=5, cols=3, bl=16, sharing="per_element", cell="upcount"),
    "3x2 block restart bl2 upcount count": EssopConfig(rows=3, cols=2, bl=2, scaling="block", lfsr_restart=True,
                                                       output_format="count", q=4, cell="upcount"),
    "2x3 q16 bl1024 upcount": EssopConfig(rows=2, cols=3, bl=1024, q=16, lr_shift=-32, cell="upcount"),
    # The shadow bank (readout='shadow'): the same results while the next pair counts. Rows > BL (the read-out
    # is the longer), rows < BL, one row, block groups, both cells, both formats.
    "5x3 bl4 shadow": EssopConfig(rows=5, cols=3, bl=4, readout="shadow"),
    "3x4 bl8 per_element shadow count": EssopConfig(rows=3, cols=4, bl=8, sharing="per_element",
                                                    output_format="count", readout="shadow"),
    "1x3 bl2 shadow": EssopConfig(rows=1, cols=3, bl=2, readout="shadow"),
    "4x3 block acc3 shadow count": EssopConfig(rows=4, cols=3, bl=4, acc_depth=3, scaling="block",
                                               output_format="count", readout="shadow"),
    "2x7 block acc3 sobol shift shadow": EssopConfig(rows=2, cols=7, bl=8, acc_depth=3, scaling="block",
                                                     rng="sobol", rng_shift=True, readout="shadow"),
    "6x3 bl2 upcount shadow": EssopConfig(rows=6, cols=3, bl=2, cell="upcount", readout="shadow"),
    "3x5 bl16 upcount shadow count": EssopConfig(rows=3, cols=5, bl=16, cell="upcount", output_format="count",
                                                 readout="shadow"),
    # Clock gating (row enables in the RTL): the same results bit for bit, both cells, per pair and block.
    "4x5 clock_gating": EssopConfig(rows=4, cols=5, bl=8, clock_gating=True),
    "3x4 block acc3 count clock_gating": EssopConfig(rows=3, cols=4, bl=16, acc_depth=3, scaling="block",
                                                     output_format="count", clock_gating=True),
    "5x3 per_element upcount clock_gating": EssopConfig(rows=5, cols=3, bl=16, sharing="per_element",
                                                        cell="upcount", clock_gating=True),
    # Both: gated counter rows cleared by the shadow bank's capture.
    "5x3 bl4 shadow clock_gating": EssopConfig(rows=5, cols=3, bl=4, readout="shadow", clock_gating=True),
    "3x5 bl16 upcount shadow clock_gating": EssopConfig(rows=3, cols=5, bl=16, cell="upcount", readout="shadow",
                                                        clock_gating=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_equals_golden_model(name):
    cfg = CONFIGS[name]
    seed = SEED + sum(map(ord, name))
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    stream = make_stream(cfg, 4 if cfg.bl > 64 else 9, rng)
    groups, want, _, _ = check_against_model(cfg, *stream, idle=0.3, stall=0.3, seed=seed)
    assert any(np.any(w.counts != 0) for w in want)       # the case exercises the counters
    if cfg.cell == "upcount":
        # Both signs reach the output: the held signs, not only the magnitudes, are checked.
        assert any(np.any(w.counts < 0) for w in want) and any(np.any(w.counts > 0) for w in want)


def test_default_configuration():
    """The built-in default (16 x 16, BL 16, q 8, shared): one realistic case."""
    cfg = EssopConfig()
    rng = np.random.default_rng(SEED)
    check_against_model(cfg, *make_stream(cfg, 4, rng, special_rate=0.01), idle=0.2, stall=0.2, seed=SEED)


@pytest.mark.parametrize("name", ["3x5 count", "5x3 per_element", "2x7 block acc3 fp16 q5 w9 lr",
                                  "5x3 bl4 shadow", "2x7 block acc3 sobol shift shadow"])
def test_special_values(name):
    cfg = CONFIGS[name]
    seed = SEED + 1 + sum(map(ord, name))
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    stream = make_stream(cfg, 12, rng, special_rate=0.08)
    _, want, _, _ = check_against_model(cfg, *stream, idle=0.2, stall=0.5, seed=seed)
    assert any(w.nonfinite for w in want) and not all(w.nonfinite for w in want)


def test_saturation_and_zero_vectors():
    cfg = EssopConfig(rows=2, cols=3, bl=8, acc_depth=2, scaling="block")
    one, zero = 0x3C00, 0x0000
    xs = np.array([[one, one, zero], [zero] * 3, [one, 0x4000, 0xC000], [one] * 3], dtype=np.uint16)
    ds = np.array([[one, 0xBC00], [one, one], [zero, zero], [0x3800, one]], dtype=np.uint16)
    last = np.array([False, True, True, True])
    # Group 1: E = 1 fits 1.0 exactly; group 2: E = 0 saturates 1.0 and 2.0; group 3: E_x very large.
    exp_x = np.array([1, 5, 0, EXP_PORT_MAX])
    exp_d = np.array([1, 5, 0, 1])
    _, want, _, _ = check_against_model(cfg, xs, ds, last, exp_x, exp_d, stall=0.3, seed=SEED)
    assert [w.saturated for w in want] == [False, True, False]


@pytest.mark.parametrize("output_format", ["fp16", "count"])
def test_poison_lasts_for_the_group(output_format):
    cfg = EssopConfig(rows=3, cols=4, bl=4, acc_depth=3, scaling="block", output_format=output_format)
    one, inf, nan = 0x3C00, 0x7C00, 0x7E00
    xs = np.array([[one, inf, one, one], [one] * 4, [one] * 4, [one] * 4], dtype=np.uint16)
    ds = np.array([[one] * 3, [0xBC00, nan, one], [one] * 3, [one] * 3], dtype=np.uint16)
    last = np.array([False, False, True, True])
    exp = np.ones(4, dtype=int)
    groups, want, _, _ = check_against_model(cfg, xs, ds, last, exp, exp, stall=0.5, seed=SEED)
    assert [w.nonfinite for w in want] == [True, False]
    if output_format == "fp16":
        data = np.array(groups[0].data)
        assert np.all(data[:, 1] == 0x7E00) and np.all(data[1, :] == 0x7E00)
        assert not np.any(np.array(groups[1].data) == 0x7E00)


def test_back_to_back_timing():
    """No idle input, no back-pressure: the properties predict every transfer and beat."""
    cfg = EssopConfig(rows=3, cols=2, bl=8, acc_depth=4, scaling="block")
    dut = EssopArray(cfg)
    rng = np.random.default_rng(SEED)
    xs, ds, _, exp_x, exp_d = make_stream(cfg, 4, rng)
    last = np.array([False, False, False, True])
    groups, want, accepts, beats = check_against_model(cfg, xs, ds, last, exp_x, exp_d)
    # Pair 0 enters an idle array; pair 1 fills the load buffer while pair 0 streams; from then on one
    # pair per cycles_per_pair, and the bitstreams of the group's pairs follow each other without a gap.
    assert np.all(np.diff(accepts[1:]) == dut.cycles_per_pair)
    last_bitstream_cycle = accepts[0] + dut.input_to_stream_latency + len(xs) * cfg.bl - 1
    assert beats[0] == last_bitstream_cycle + dut.last_pair_to_output_latency
    assert beats == list(range(beats[0], beats[0] + dut.cycles_per_group_output))


def test_single_pair_latency_and_next_group_gap():
    cfg = EssopConfig(rows=2, cols=2, bl=4)
    dut = EssopArray(cfg)
    rng = np.random.default_rng(SEED)
    xs, ds, _, _, _ = make_stream(cfg, 3, rng)
    last = np.ones(3, dtype=bool)
    _, _, accepts, beats = check_against_model(cfg, xs, ds, last, None, None)
    assert beats[0] - accepts[0] == dut.input_to_first_output_latency
    # The second pair waited in the stream buffer while group 0 was read out.
    last_row_of_group0 = beats[cfg.rows - 1]
    assert beats[cfg.rows] == (last_row_of_group0 + dut.output_to_stream_gap + cfg.bl - 1
                               + dut.last_pair_to_output_latency)


@pytest.mark.parametrize("pairs", [1, 3])
def test_steady_state_group_period(pairs):
    cfg = EssopConfig(rows=3, cols=2, bl=4, acc_depth=3, scaling="block")
    dut = EssopArray(cfg)
    rng = np.random.default_rng(SEED + pairs)
    xs, ds, _, exp_x, exp_d = make_stream(cfg, 4 * pairs, rng)
    last = (np.arange(4 * pairs) % pairs) == pairs - 1
    _, _, _, beats = check_against_model(cfg, xs, ds, last, exp_x, exp_d)
    firsts = beats[::cfg.rows]
    assert np.all(np.diff(firsts[1:]) == dut.steady_state_cycles_per_group(pairs))


@pytest.mark.parametrize("bl,rows,cols", [(2, 1, 1), (2, 2, 9), (4, 5, 3), (16, 16, 16)])
def test_per_pair_timing(bl, rows, cols):
    """per_pair (groups of one pair; the exponent max trees take an extra cycle in the load buffer): the first
    row of an idle array, and one group per steady_state_cycles_per_group(1) with a pair always waiting,
    even at BL 2 where the extra cycle is only hidden behind the read-out."""
    cfg = EssopConfig(rows=rows, cols=cols, bl=bl)
    dut = EssopArray(cfg)
    rng = np.random.default_rng(SEED + bl + rows)
    xs, ds, _, _, _ = make_stream(cfg, 5, rng)
    _, _, accepts, beats = check_against_model(cfg, xs, ds, np.ones(5, dtype=bool), None, None)
    assert beats[0] - accepts[0] == dut.input_to_first_output_latency
    firsts = beats[::cfg.rows]
    assert np.all(np.diff(firsts) == dut.steady_state_cycles_per_group(1))


def test_properties():
    cfg = EssopConfig(rows=5, cols=3, bl=32, output_format="count", acc_depth=6, scaling="block")
    dut = EssopArray(cfg)
    assert dut.cycles_per_pair == cfg.bl
    assert dut.row_width == 3 and len(dut.o_row) == dut.row_width
    assert len(dut.o_data) == cfg.cols * cfg.count_width == cfg.cols * dut.data_element_width
    assert len(EssopArray(EssopConfig(rows=1, cols=2)).o_row) == 1
    assert len(EssopArray(EssopConfig(rows=4, cols=2)).o_data) == 2 * 16


def top_ports(text, name):
    """{port: (direction, width)} declared by module `name` of a Verilog text."""
    body = text[text.index(f"module {name}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[m[3]] = (m[1], int(m[2]) + 1 if m[2] else 1)
    return ports


@pytest.mark.parametrize("cfg", [EssopConfig(rows=2, cols=3, bl=4),
                                 EssopConfig(rows=5, cols=1, bl=8, output_format="count", acc_depth=4,
                                             scaling="block")])
def test_verilog_ports(cfg):
    dut = EssopArray(cfg)
    want = {name: ("input" if member.flow == In else "output", Shape.cast(member.shape).width)
            for name, member in dut.signature.members.items()}
    want.update(clk=("input", 1), rst=("input", 1))
    assert top_ports(verilog(cfg), TOP_NAME) == want
    assert "module top(" in verilog(cfg, name="top")


def test_no_multiplier():
    # The whole unit uses adders, comparators, shifters and XORs; a `*` in the netlist would be a multiplier.
    text = verilog(EssopConfig(rows=2, cols=3, bl=8, output_format="fp16"))
    assert " * " not in text


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: EssopArray({"rows": 2}), TypeError, "cfg must be an EssopConfig, not {'rows': 2}"),
    (lambda: verilog(None), TypeError, "cfg must be an EssopConfig, not None"),
    (lambda: EssopArray(EssopConfig()).steady_state_cycles_per_group(2), ValueError,
     "pairs must be in [1, 1], not 2"),
    (lambda: EssopArray(EssopConfig()).steady_state_cycles_per_group(1.0), TypeError,
     "pairs must be an int, not 1.0"),
    (lambda: verilog(EssopConfig(), name=3), TypeError, "name must be a str, not 3"),
    (lambda: verilog(EssopConfig(), name="my top"), ValueError, "name must be a Verilog identifier, not 'my top'"),
])
def test_parameter_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value) == msg


# ---- the shadow bank (readout='shadow'): the read-out overlaps the next group's bitstreams ----------------------

def _groups_of(pairs, count):
    return (np.arange(pairs * count) % pairs) == pairs - 1


@pytest.mark.parametrize("rows,cols,bl,pairs,cell", [
    (3, 2, 4, 1, "updown"),     # rows < BL: BL + 1 per group
    (6, 2, 4, 1, "updown"),     # rows > BL: the bank's capture interval, rows + 1
    (4, 3, 4, 1, "upcount"),    # rows = BL: both bounds equal
    (1, 3, 2, 1, "updown"),     # one row, the shortest bitstream
    (16, 16, 16, 1, "updown"),  # the default size: 17 instead of 33
    (3, 2, 4, 3, "updown"),     # block groups: P * BL + 1
    (9, 2, 2, 2, "updown"),     # block groups with the read-out the longer
])
def test_shadow_timing(rows, cols, bl, pairs, cell):
    """No idle input, no back-pressure: the first row of an idle array, the groups' period and the rows of a
    group on consecutive cycles, each as the properties say."""
    cfg = EssopConfig(rows=rows, cols=cols, bl=bl, cell=cell, acc_depth=pairs,
                      scaling="block" if pairs > 1 else "per_pair", readout="shadow")
    dut = EssopArray(cfg)
    rng = np.random.default_rng(SEED + rows + bl + pairs)
    xs, ds, _, exp_x, exp_d = make_stream(cfg, 5 * pairs, rng)
    _, _, accepts, beats = check_against_model(cfg, xs, ds, _groups_of(pairs, 5), exp_x, exp_d)
    first_group_end = accepts[0] + dut.input_to_stream_latency + pairs * cfg.bl - 1
    assert beats[0] == first_group_end + dut.last_pair_to_output_latency
    if pairs == 1:
        assert beats[0] - accepts[0] == dut.input_to_first_output_latency
    firsts = beats[::cfg.rows]
    assert np.all(np.diff(firsts) == dut.steady_state_cycles_per_group(pairs))
    assert dut.steady_state_cycles_per_group(pairs) == max(pairs * bl + 1, rows + 1)
    for k in range(0, len(beats), cfg.rows):
        assert beats[k:k + cfg.rows] == list(range(beats[k], beats[k] + cfg.rows))


def test_shadow_properties_against_shift():
    """The same array with and without the bank: one more cycle to the first row, and the read-out no longer
    in the group period (16 x 16 BL 16: 17 cycles instead of 33)."""
    shift, shadow = EssopArray(EssopConfig()), EssopArray(EssopConfig(readout="shadow"))
    assert shadow.last_pair_to_output_latency == shift.last_pair_to_output_latency + 1
    assert (shift.steady_state_cycles_per_group(1), shadow.steady_state_cycles_per_group(1)) == (33, 17)
    assert shadow.output_to_stream_gap is None and shift.output_to_stream_gap == 1
    assert shadow.cycles_per_pair == shift.cycles_per_pair == 16
    assert EssopArray(EssopConfig(rows=64, cols=64, readout="shadow")).steady_state_cycles_per_group(1) == 65


@settings(max_examples=12, deadline=None)
@given(rows=st.integers(1, 7), cols=st.integers(1, 4), bl_log2=st.integers(1, 4), pairs=st.integers(1, 3),
       upcount=st.booleans(), count=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_shadow_equals_golden_model_property(rows, cols, bl_log2, pairs, upcount, count, seed):
    """Any small shadow-bank array under random idle input and back-pressure: every group equal to the golden
    model's (group ends from the stream, so groups of 1 to acc_depth pairs)."""
    if upcount:
        pairs = 1
    cfg = EssopConfig(rows=rows, cols=cols, bl=1 << bl_log2, acc_depth=pairs,
                      scaling="block" if pairs > 1 else "per_pair", cell="upcount" if upcount else "updown",
                      output_format="count" if count else "fp16", readout="shadow")
    rng = np.random.default_rng(seed)
    check_against_model(cfg, *make_stream(cfg, 6, rng), idle=0.3, stall=0.4, seed=seed)

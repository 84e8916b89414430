"""essop.synth.gatesim.vcd on a tiny VCD: per-cycle samples before each rising edge (or each input period),
names below the design's top (nested scopes, escaped identifiers, aliases), x/z as 0, the toggle rate."""
import numpy as np
import pytest

from essop.synth.gatesim.vcd import read_vcd, sample, toggle_rate

# Clock period 10; rising edges at 10, 20, 30. `v` (2 bits) changes at 0, 10 (on the edge: seen only by the
# next sample), 15 and 25; the escaped `\s.f` and the nested `sub.c` are 1-bit; `top.alias` shares v's code.
TINY_VCD = r"""$timescale 1 fs $end
$scope module bench $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 2 " v $end
$var wire 1 # \s.f $end
$scope module sub $end
$var wire 1 $ c $end
$var wire 2 " alias $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
b00 "
x#
0$
$end
#5
1!
#6
0!
#10
1!
b01 "
#12
0!
1#
#15
b11 "
1$
#20
1!
#25
b1x "
#26
0!
#30
1!
"""


@pytest.fixture
def vcd_file(tmp_path):
    path = tmp_path / "tiny.vcd"
    path.write_text(TINY_VCD)
    return path


def test_read_declarations_and_changes(vcd_file):
    vcd = read_vcd(vcd_file)
    assert [(v.scope, v.name, v.ident, v.width) for v in vcd.vars] == [
        (("bench", "top"), "clk", "!", 1), (("bench", "top"), "v", '"', 2), (("bench", "top"), "s.f", "#", 1),
        (("bench", "top", "sub"), "c", "$", 1), (("bench", "top", "sub"), "alias", '"', 2)]
    assert vcd.changes['"'] == [(0, "0"), (10, "1"), (15, "11"), (25, "1x")]
    assert vcd.end_time() == 30


def test_sample_before_each_rising_edge(vcd_file):
    bits, cycles = sample(vcd_file, "clk")
    # Rising edges at 5, 10, 20, 30 (0 -> 1 after the first value): sampled strictly before each.
    assert cycles == 4
    # v: 0, 0 (the edge at 10 sees the value before it), 3, "1x" -> 2 (x reads as 0).
    assert bits["v[0]"].tolist() == [False, False, True, False]
    assert bits["v[1]"].tolist() == [False, False, True, True]
    assert bits["s.f"].tolist() == [False, False, True, True]        # x reads as 0; escaped name, no backslash
    assert bits["sub.c"].tolist() == [False, False, True, True]
    assert bits["clk"].tolist() == [False, False, False, False]
    # A later alias of the same code (sub.alias) is named too, with the same values.
    assert np.array_equal(bits["sub.alias[0]"], bits["v[0]"])


def test_sample_combinational_period(vcd_file):
    bits, cycles = sample(vcd_file, None, period_fs=12)
    # Samples before 12, 24, 36 (the last change is at 30).
    assert cycles == 3
    assert bits["v[0]"].tolist() == [True, True, False]
    assert bits["v[1]"].tolist() == [False, True, True]


def test_toggle_rate(vcd_file):
    # v: 00 -> 01 -> 11 -> 1x: 1 + 1 + 1 bit changes; s.f: x -> 1: 1; sub.c: 0 -> 1: 1. clk excluded.
    # Bits: v 2, s.f 1, sub.c 1 (alias shares v's code, counted once) = 4 bits; over 4 cycles.
    assert toggle_rate(vcd_file, 4) == pytest.approx(5 / 16)
    # Excluding sub.c removes its toggle and its bit: 4 toggles over 3 bits.
    assert toggle_rate(vcd_file, 4, exclude=("clk", "c")) == pytest.approx(4 / 12)


def test_toggle_rate_needs_cycles(vcd_file):
    with pytest.raises(ValueError, match="no signals or no cycles"):
        toggle_rate(vcd_file, 0)

"""essop.synth.gatesim.liberty on a tiny Liberty snippet: cells, pins, functions, flip-flops by their ff group,
latches, areas, clock gating, units."""
import itertools

import numpy as np
import pytest

from essop.synth.gatesim.liberty import (LibertyUnits, cell_library, compile_function, library_name, parse_liberty,
                                        read_units)

#: Two dialects in one file: NanGate's bare words and sky130's quoted strings.
TINY_LIB = r"""
library (tiny) {
  time_unit : "1ns";
  leakage_power_unit : "1nW";
  capacitive_load_unit (1.0000000000, "pf");
  cell (NAND2_X1) {
    area : 1.5;
    pin (A) { direction : input; capacitance : 0.001; }
    pin (B) { direction : input; }
    pin (ZN) {
      direction : output;
      function : "!(A & B)";
    }
  }
  cell ("tiny__dfxtp_1") {
    area : 4.25;
    ff ("IQ", "IQN") {
      next_state : "D";
      clocked_on : "CLK";
    }
    pin ("CLK") {
      direction : "input";
      clock : "true";
    }
    pin ("D") {
      direction : "input";
    }
    pin ("Q") {
      direction : "output";
      function : "IQ";
    }
  }
  cell (LHQ_X1) {
    area : 3.0;
    latch ("IQ", "IQN") {
      data_in : "D";
      enable : "E";
    }
    pin (D) { direction : input; }
    pin (E) { direction : input; clock : true; }
    pin (Q) { direction : output; function : "IQ"; }
  }
  cell (ICG_X1) {
    clock_gating_integrated_cell : latch_posedge;
    area : 2.0;
    pin (CLK) {
      direction : input;
      clock_gate_clock_pin : true;
    }
    pin (E) { direction : input; clock_gate_enable_pin : true; }
    pin (GCLK) { direction : output; }
  }
}
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.lib"
    # One attribute per line, as the reader expects and the shipped libraries are written.
    path.write_text(TINY_LIB.replace("; ", ";\n").replace("{ ", "{\n"))
    return path


def test_cells_pins_and_functions(tiny):
    cells = parse_liberty([tiny])
    assert list(cells) == ["NAND2_X1", "tiny__dfxtp_1", "LHQ_X1", "ICG_X1"]
    nand = cells["NAND2_X1"]
    assert (nand.inputs, nand.outputs, nand.area) == (["A", "B"], {"ZN": "!(A & B)"}, 1.5)
    assert not nand.sequential and not nand.ff and not nand.latch


def test_flip_flop_is_the_ff_group_and_a_latch_is_not(tiny):
    cells = parse_liberty([tiny])
    dff, latch = cells["tiny__dfxtp_1"], cells["LHQ_X1"]
    # sky130's quoted pin names and directions, and its quoted "true".
    assert (dff.ff, dff.latch, dff.sequential) == (True, False, True)
    assert (dff.inputs, dff.outputs, dff.clock_pins, dff.next_state) == (["CLK", "D"], {"Q": "IQ"}, ["CLK"], "D")
    assert dff.area == 4.25
    assert (latch.ff, latch.latch, latch.sequential) == (False, True, True)


def test_clock_gating_cell(tiny):
    icg = parse_liberty([tiny])["ICG_X1"]
    assert (icg.clock_gating, icg.gated_clock_pin, icg.area) == ("latch_posedge", "CLK", 2.0)
    assert not icg.ff


def test_units_and_name(tiny):
    assert read_units(tiny) == LibertyUnits(time_s=1e-9, capacitance_f=1e-12, leakage_power_w=1e-9)
    assert library_name(tiny) == "tiny"


def test_units_missing(tmp_path):
    path = tmp_path / "nounits.lib"
    path.write_text('library (x) {\n  time_unit : "1ps";\n  cell (A) {\n')
    with pytest.raises(ValueError, match="no capacitive_load_unit, leakage_power_unit in the library header"):
        read_units(path)


@pytest.mark.parametrize("func, truth", [
    ("!(A & B)", lambda a, b, c: not (a and b)),
    ("(A * B) + C'", lambda a, b, c: (a and b) or not c),
    ("A ^ B", lambda a, b, c: a != b),
    ("!((A | B) & C)", lambda a, b, c: not ((a or b) and c)),
    ("0", lambda a, b, c: False),
    ("1", lambda a, b, c: True),
])
def test_compile_function_truth_table(func, truth):
    combos = list(itertools.product([False, True], repeat=3))
    values = {p: np.array([c[i] for c in combos]) for i, p in enumerate("ABC")}
    got = compile_function(func, ["A", "B", "C"])(values, len(combos))
    assert got.tolist() == [truth(*c) for c in combos]


def test_compile_function_unknown_pin():
    with pytest.raises(ValueError) as e:
        compile_function("A & Z", ["A", "B"])
    assert str(e.value) == "Liberty function 'A & Z' uses 'Z', not an input pin of the cell"


def test_cell_library(tiny, tmp_path):
    other = tmp_path / "other.lib"
    other.write_text('library ("seq") {\n  cell ("ICG_B") {\n  }\n}\n')
    assert cell_library([tiny, other], "ICG_X1") == "tiny"
    assert cell_library([tiny, other], "ICG_B") == "seq"
    with pytest.raises(ValueError, match="cell 'ICG_C' is in none of"):
        cell_library([tiny, other], "ICG_C")

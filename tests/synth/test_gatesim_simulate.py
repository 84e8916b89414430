"""essop.synth.gatesim.simulate on tiny netlists: every net's toggle rate from the sampled register and input
values, flip-flops missing from the VCD simulated from their D, the D/Q self-check, register duties."""
import numpy as np
import pytest

from essop.synth.gatesim.liberty import LibCell
from essop.synth.gatesim.netlist import Netlist
from essop.synth.gatesim.simulate import net_activity

CELLS = {
    "INV": LibCell(inputs=["A"], outputs={"Y": "!A"}),
    "AND2": LibCell(inputs=["A", "B"], outputs={"Y": "(A & B)"}),
    "DFF": LibCell(inputs=["D", "CK"], outputs={"Q": "IQ"}, sequential=True, clock_pins=["CK"], next_state="D",
                   ff=True),
}


def toggler(extra=()):
    """A flip-flop whose D is its inverted Q (q toggles every cycle), AND-ed with input `en` into `y`."""
    return Netlist("t", ["clk", "en"], ["y"], [
        ("ff0", "DFF", {"CK": "clk", "D": "nq", "Q": "q"}),
        ("inv", "INV", {"A": "q", "Y": "nq"}),
        ("and", "AND2", {"A": "q", "B": "en", "Y": "y"}),
        *extra])


def b(*v):
    return np.array(v, dtype=bool)


def test_rates_from_sampled_register():
    bits = {"q": b(0, 1, 0, 1, 0), "en": b(1, 1, 0, 0, 1)}
    act = net_activity(toggler(), CELLS, bits, 5)
    # q and nq change every cycle; y = q & en = 0, 1, 0, 0, 0: two changes in four.
    assert act.rate == {"en": 0.5, "q": 1.0, "nq": 1.0, "y": 0.5}
    assert (act.flops, act.flops_from_vcd, act.inputs, act.inputs_from_vcd) == (1, 1, 1, 1)
    assert act.mapping_check == 1.0
    assert act.registers == {"q": (["ff0"], 1.0)}
    assert act.mean() == pytest.approx(0.75)


def test_self_check_catches_a_wrong_register_value():
    # q held at 0 contradicts D = !q = 1: every (cycle, next cycle) pair fails the check.
    act = net_activity(toggler(), CELLS, {"q": b(0, 0, 0, 0), "en": b(0, 0, 0, 0)}, 4)
    assert act.mapping_check == 0.0


def test_flip_flop_missing_from_vcd_is_simulated_from_d():
    act = net_activity(toggler(), CELLS, {"en": b(1, 1, 1, 1)}, 4)
    # From zero state: q = 0, 1, 0, 1.
    assert act.flops_from_vcd == 0
    assert act.rate["q"] == 1.0 and act.rate["y"] == 1.0
    assert act.mapping_check == 1.0   # nothing sampled to check against


def test_missing_input_reads_as_zero():
    act = net_activity(toggler(), CELLS, {"q": b(0, 1, 0, 1)}, 4)
    assert act.inputs_from_vcd == 0 and act.rate["en"] == 0.0 and act.rate["y"] == 0.0


def test_unknown_cell_and_loop_and_wide_assign():
    bad = toggler([("x", "NAND9", {})])
    with pytest.raises(ValueError) as e:
        net_activity(bad, CELLS, {}, 2)
    assert str(e.value) == "cell type 'NAND9' of instance 'x' is not in the Liberty files"
    loop = Netlist("l", [], [], [("i1", "INV", {"A": "a", "Y": "b"}), ("i2", "INV", {"A": "b", "Y": "a"})])
    with pytest.raises(ValueError, match="combinational loop"):
        net_activity(loop, CELLS, {}, 2)
    wide = Netlist("w", [], [], [], wide_assigns=["z = { a, b }"])
    with pytest.raises(ValueError, match=r"only single-bit assign statements are handled, not z = \{ a, b \}"):
        net_activity(wide, CELLS, {}, 2)


def test_qn_beside_a_named_q_is_its_complement():
    # A flip-flop with both outputs used (NanGate 45 nm's DFF_X1): the VCD names Q; QN is !Q from the first
    # cycle on, not a second flip-flop simulated from zero state (which would be wrong in cycle 0 here).
    cells = dict(CELLS, DFFQN=LibCell(inputs=["D", "CK"], outputs={"Q": "IQ", "QN": "IQN"}, sequential=True,
                                      clock_pins=["CK"], next_state="D", ff=True))
    # q toggles (D = QN); y = q & en.
    nl = Netlist("t", ["clk", "en"], ["y"], [("ff0", "DFFQN", {"CK": "clk", "D": "qn", "Q": "q", "QN": "qn"}),
                                             ("and", "AND2", {"A": "q", "B": "en", "Y": "y"})])
    act = net_activity(nl, cells, {"q": b(1, 0, 1, 0), "en": b(1, 1, 1, 1)}, 4)
    assert act.flops_from_vcd == 1
    assert act.mapping_check == 1.0
    assert act.rate["qn"] == 1.0


def test_latch_is_refused():
    cells = dict(CELLS, LATCH=LibCell(inputs=["D", "E"], outputs={"Q": "IQ"}, sequential=True, latch=True))
    nl = Netlist("t", ["en"], [], [("l0", "LATCH", {"D": "en", "E": "en", "Q": "q"})])
    with pytest.raises(ValueError, match="instance 'l0' is a latch \\(LATCH\\); the gate-level simulation handles"):
        net_activity(nl, cells, {}, 2)



#: An integrated clock-gating cell as the Liberty files describe one (NanGate 15 nm's pins).
ICG = LibCell(inputs=["CLK", "E", "TE"], outputs={"Q": ""}, clock_gating="latch_posedge_precontrol",
              gated_clock_pin="CLK", gate_enable_pin="E", gate_test_pin="TE", gate_out_pin="Q")


def gated_counter_bit():
    """A toggling flip-flop (D = !Q) on the clock gated by input `en` through an ICG (test enable tied low)."""
    return Netlist("g", ["clk", "en"], [], [
        ("icg", "ICG", {"CLK": "clk", "E": "en", "TE": "1'h0", "Q": "gclk"}),
        ("ff0", "DFF", {"CK": "gclk", "D": "nq", "Q": "q"}),
        ("inv", "INV", {"A": "q", "Y": "nq"})])


def test_gated_flip_flop_captures_only_in_enabled_cycles():
    cells = CELLS | {"ICG": ICG}
    en = b(1, 0, 0, 1, 1, 0)
    # Simulated from zero state: q changes after each enabled cycle only.
    act = net_activity(gated_counter_bit(), cells, {"en": en}, 6)
    assert act.rate["q"] == pytest.approx(3 / 5)
    assert act.clock_duty == {"icg": 0.5, "ff0": 0.5}
    # Sampled: a q that follows the gated clock passes the D/Q check, one that follows the clock does not.
    held = net_activity(gated_counter_bit(), cells, {"en": en, "q": b(0, 1, 1, 1, 0, 1)}, 6)
    assert held.mapping_check == 1.0 and held.flops_from_vcd == 1
    free = net_activity(gated_counter_bit(), cells, {"en": en, "q": b(0, 1, 0, 1, 0, 1)}, 6)
    assert free.mapping_check == pytest.approx(3 / 5)
    # The test enable opens the gate as the enable does.
    tested = Netlist("g", ["clk", "en"], [], [
        ("icg", "ICG", {"CLK": "clk", "E": "1'h0", "TE": "en", "Q": "gclk"}),
        ("ff0", "DFF", {"CK": "gclk", "D": "nq", "Q": "q"}), ("inv", "INV", {"A": "q", "Y": "nq"})])
    assert net_activity(tested, cells, {"en": en}, 6).clock_duty["ff0"] == 0.5
    # Ungated flip-flops have no duty entry (their clock runs every cycle).
    assert net_activity(toggler(), CELLS, {"en": en}, 6).clock_duty == {}


def test_only_one_level_of_clock_gating():
    cells = CELLS | {"ICG": ICG}
    chained = Netlist("c", ["clk", "en"], [], [
        ("icg0", "ICG", {"CLK": "clk", "E": "en", "Q": "g0"}),
        ("icg1", "ICG", {"CLK": "g0", "E": "en", "Q": "g1"})])
    with pytest.raises(ValueError) as e:
        net_activity(chained, cells, {"en": b(1, 0)}, 2)
    assert str(e.value) == "clock-gating cell 'icg1' is not on the clock 'clk'; only one level of clock gating is simulated"

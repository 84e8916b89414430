"""essop.synth.power: each instance interpolated to its own output nets' rates between OpenSTA's reports at
activity 0 and A_REF (hand-computed on a canned report); the clock-gating estimate; and, on a real netlist,
the interpolation at one uniform rate reproduces OpenSTA's own total."""
import pytest

from essop.synth import power, sta
from essop.synth.gatesim.liberty import LibCell
from essop.synth.gatesim.netlist import Netlist
from essop.synth.gatesim.simulate import NetActivity

CELLS = {"INV": LibCell(inputs=["A"], outputs={"Y": "!A"}),
         "DFF": LibCell(inputs=["D", "CK"], outputs={"Q": "IQ"}, sequential=True, next_state="D", ff=True)}


def report(icg: bool) -> str:
    # Per instance: internal, switching, leakage, total, name (W). A_REF = 0.5.
    text = ("@@INST0\n"
            "1.0e-06 0.0e+00 1.0e-09 1.0e-06 f0\n1.0e-06 0.0e+00 1.0e-09 1.0e-06 f1\n"
            "1.0e-06 0.0e+00 1.0e-09 1.0e-06 f2\n0.0e+00 0.0e+00 2.0e-09 2.0e-09 g\n"
            "@@INST1\n"
            "3.0e-06 1.0e-06 1.0e-09 4.0e-06 f0\n3.0e-06 1.0e-06 1.0e-09 4.0e-06 f1\n"
            "3.0e-06 1.0e-06 1.0e-09 4.0e-06 f2\n2.0e-06 4.0e-06 2.0e-09 6.0e-06 g\n")
    if icg:
        text += "@@ICG\n5.0e-07 1.0e-07 0.0e+00 6.0e-07 essop_icg_probe\n"
    return text


NETLIST = Netlist("t", ["clk"], [], [
    ("f0", "DFF", {"D": "n", "Q": "r[0]"}), ("f1", "DFF", {"D": "n", "Q": "r[1]"}),
    ("f2", "DFF", {"D": "n", "Q": "r[2]"}), ("g", "INV", {"A": "r[0]", "Y": "n"})])


def activity(duty: float) -> NetActivity:
    return NetActivity({"r[0]": 0.1, "r[1]": 0.1, "r[2]": 0.1, "n": 0.25}, 100, 3, 3, 1.0, 0, 0,
                       {"r": (["f0", "f1", "f2"], duty)})


def test_per_net_interpolation():
    tot = power.per_net_power(report(False), NETLIST, CELLS, activity(0.1))
    # Flip-flop at rate 0.1: internal 1 + (3 - 1) * 0.1 / 0.5 = 1.4 uW, switching 0.2 uW; gate at 0.25:
    # internal 1 uW, switching 2 uW.
    assert tot["internal"] == pytest.approx(3 * 1.4e-6 + 1e-6)
    assert tot["switching"] == pytest.approx(3 * 0.2e-6 + 2e-6)
    assert tot["leakage"] == pytest.approx(5e-9)
    assert tot["sequential"] == pytest.approx(3 * 1.6e-6)
    assert tot["dynamic"] == pytest.approx(tot["internal"] + tot["switching"])
    assert tot["clock_floor"] == pytest.approx(3e-6)
    assert (tot["gating_saving"], tot["gating_cells"]) == (0.0, 0)   # no @@ICG report


def test_clock_gating_estimate():
    p0 = sta.instance_power(report(True), "@@INST0")
    # Floor 3 uW, register changes in 10 % of cycles: gated saves 3 * 0.9 - 0.6 = 2.1 uW with one cell.
    saving, cells = power.clock_gating_estimate(report(True), p0, activity(0.1))
    assert saving == pytest.approx(2.1e-6) and cells == 1
    # A register that changes in 85 % of cycles: 3 * 0.15 = 0.45 uW < 0.6 uW, not worth a gating cell.
    assert power.clock_gating_estimate(report(True), p0, activity(0.85)) == (0.0, 0)
    # Registers narrower than GATE_MIN_BITS are left alone.
    narrow = NetActivity({}, 100, 2, 2, 1.0, 0, 0, {"r": (["f0", "f1"], 0.0)})
    assert power.GATE_MIN_BITS == 3
    assert power.clock_gating_estimate(report(True), p0, narrow) == (0.0, 0)


def test_gated_clock_scales_clock_driven_power():
    """Synthesised gating: f0..f2 on the clock of gating cell `icg`, which passes it in 25 % of cycles."""
    cells = CELLS | {"ICG": LibCell(inputs=["CK", "E"], outputs={"GCK": ""}, clock_gating="latch_posedge",
                                    gated_clock_pin="CK", gate_enable_pin="E", gate_out_pin="GCK")}
    text = report(False).replace("@@INST1", "4.0e-06 2.0e-06 3.0e-09 6.0e-06 icg\n@@INST1") + \
        "5.0e-06 2.0e-06 3.0e-09 7.0e-06 icg\n"
    gated = Netlist("t", ["clk", "en"], [], [*NETLIST.instances, ("icg", "ICG", {"CK": "clk", "E": "en", "GCK": "gclk"})])
    act = activity(0.1)
    act.rate["en"] = 0.2
    act.clock_duty = {"icg": 0.25, "f0": 0.25, "f1": 0.25, "f2": 0.25}
    tot = power.per_net_power(text, gated, cells, act)
    # Flip-flops: 1 uW x 0.25 + (3 - 1) x 0.1 / 0.5 = 1.05 uW internal, 0.2 uW switching. Gating cell: internal
    # 4 + (5 - 4) x 0.2 / 0.5 = 4.4 uW (its clock pin sees every edge), switching 2 uW x 0.25 = 0.5 uW (the
    # gated clock net). Inverter as in test_per_net_interpolation.
    assert tot["internal"] == pytest.approx(3 * 0.65e-6 + 1e-6 + 4.4e-6)
    assert tot["switching"] == pytest.approx(3 * 0.2e-6 + 2e-6 + 0.5e-6)
    assert tot["clock_floor"] == pytest.approx(3 * 0.25e-6 + 4e-6 + 0.5e-6)
    # A gated register is not gated again by the estimate.
    p0 = sta.instance_power(report(True), "@@INST0")
    assert power.clock_gating_estimate(report(True), p0, act) == (0.0, 0)


@pytest.mark.slow
def test_per_instance_interpolation_matches_global(tmp_path):
    # With every net at one rate a, the per-instance interpolation must give OpenSTA's own total at a.
    from essop.hdl.fp16_mul import Fp16Multiplier
    from essop.synth import flow, libraries
    from essop.synth.gatesim import liberty, netlist

    res = flow.synthesize(Fp16Multiplier(1), "fp16_mul", "nangate15", tmp_path, toggle_rate=0.2)
    libs = libraries.unpack(libraries.library("nangate15"), tmp_path)
    out = sta.run_sta(tmp_path, "fp16_mul", libs, 1000.0, 0.23, "clk", per_instance=True)
    power_report = sta.parse_power(out)
    gates = netlist.parse_netlist(tmp_path / "netlist.v", "fp16_mul")
    cells = liberty.parse_liberty(libs)
    nets = {p for _, _, pins in gates.instances for p in pins.values()}
    act = NetActivity({n: 0.23 for n in nets}, 10, 0, 0, 1.0, 0, 0)
    pn = power.per_net_power(out, gates, cells, act)
    internal, switching, _ = power_report["Total"]
    assert res.n_flops > 0
    assert pn["dynamic"] == pytest.approx(internal + switching, rel=1e-3)


def test_clock_gating_probe_missing():
    text = report(False) + "@@ICG\nWarning: sta.tcl, 24 instance 'essop_icg_probe' not found.\n"
    with pytest.raises(RuntimeError, match="no power for the clock-gating probe"):
        power.clock_gating_estimate(text, sta.instance_power(text, "@@INST0"), activity(0.1))

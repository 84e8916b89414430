"""essop.synth.sta: the OpenSTA Tcl script, the parsers of its timing and power reports (on a canned report),
and a real run on a tiny netlist."""
from pathlib import Path

import pytest

from essop.synth import sta

#: The shape of OpenSTA 2.0.17's output for the script's reports (values made up, units: ps and W).
REPORT = """@@CHECKS
Startpoint: a (input port clocked by clk)
Endpoint: r (rising edge-triggered flip-flop clocked by clk)
  1000.0000   data required time
  -143.2500   data arrival time
---------------------------------------------------------
   856.7500   slack (MET)

@@POWER
Group                  Internal  Switching    Leakage      Total
                          Power      Power      Power      Power
----------------------------------------------------------------
Sequential           1.00000000e-05 2.00000000e-06 3.00000000e-08 1.20300000e-05  60.0%
Combinational        4.00000000e-06 5.00000000e-06 6.00000000e-08 9.06000000e-06  40.0%
Macro                0.00000000e+00 0.00000000e+00 0.00000000e+00 0.00000000e+00   0.0%
Pad                  0.00000000e+00 0.00000000e+00 0.00000000e+00 0.00000000e+00   0.0%
----------------------------------------------------------------
Total                1.40000000e-05 7.00000000e-06 9.00000000e-08 2.10900000e-05 100.0%
@@INST0
Internal  Switching    Leakage      Total
   Power      Power      Power      Power
----------------------------------------------------------------
1.00000000e-06 0.00000000e+00 1.00000000e-09 1.00100000e-06 _1_
0.00000000e+00 0.00000000e+00 2.00000000e-09 2.00000000e-09 _2_
"""


def test_parse_checks():
    assert sta.parse_checks(REPORT, 1000.0) == pytest.approx(143.25)
    violated = REPORT.replace("856.7500   slack (MET)", "-12.5000   slack (VIOLATED)")
    assert sta.parse_checks(violated, 1000.0) == pytest.approx(1012.5)
    with pytest.raises(RuntimeError, match="no constrained path"):
        sta.parse_checks("@@CHECKS\nNo paths found.\n@@POWER\n", 1000.0)


def test_parse_power():
    power = sta.parse_power(REPORT)
    assert power["Total"] == (1.4e-05, 7e-06, 9e-08)
    assert power["Sequential"] == (1e-05, 2e-06, 3e-08)
    assert set(power) == {"Sequential", "Combinational", "Macro", "Pad", "Total"}
    with pytest.raises(RuntimeError, match="no power report"):
        sta.parse_power("@@POWER\n")


def test_instance_power():
    assert sta.instance_power(REPORT, "@@INST0") == {"_1_": (1e-06, 0.0, 1e-09), "_2_": (0.0, 0.0, 2e-09)}


def test_script_clocked_and_combinational():
    libs = [Path("/b/a.lib")]
    clocked = sta.sta_script(Path("/b"), "essop.top", libs, 1000.0, 0.125, "clk")
    assert clocked.splitlines()[:5] == [
        "read_liberty /b/a.lib", "read_verilog /b/netlist.v", "link_design \\essop.top",
        "create_clock -name clk -period 1000.0 [get_ports clk]",
        "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]"]
    assert "set_power_activity -global -activity 0.125 -duty 0.5" in clocked
    assert "@@INST0" not in clocked
    comb = sta.sta_script(Path("/b"), "mul", libs, 1.0, 0.3, None, per_instance=True)
    assert "create_clock -name clk -period 1.0\nset_input_delay 0 -clock clk [all_inputs]" in comb
    assert comb.index("@@INST0") < comb.index(f"-activity {sta.A_REF} ") < comb.index("@@INST1")
    assert "@@ICG" not in comb
    # The clock-gating probe names the library's cell and its clock pin.
    gated = sta.sta_script(Path("/b"), "t", libs, 1.0, 0.3, "clk", per_instance=True, icg=("lib", "ICG_X1", "CK"))
    assert "make_instance essop_icg_probe lib/ICG_X1\nconnect_pin clk essop_icg_probe/CK" in gated


@pytest.mark.slow
def test_run_sta_on_a_tiny_netlist(tmp_path):
    from essop.synth import libraries
    libs = libraries.unpack(libraries.library("nangate15"), tmp_path)
    (tmp_path / "netlist.v").write_text(
        "module t(clk, a, q);\n  input clk;\n  input a;\n  output q;\n  wire n;\n"
        "  INV_X1 _1_ (\n    .I(a),\n    .ZN(n)\n  );\n"
        "  DFFRNQ_X1 _2_ (\n    .CLK(clk),\n    .D(n),\n    .Q(q),\n    .RN(1'h1)\n  );\nendmodule\n")
    out = sta.run_sta(tmp_path, "t", libs, 1000.0, 0.5, "clk", per_instance=True)
    min_period = sta.parse_checks(out, 1000.0)
    # An inverter and a flip-flop's setup: a few ps to a few tens of ps at 15 nm.
    assert 1.0 < min_period < 100.0
    assert set(sta.instance_power(out, "@@INST1")) == {"_1_", "_2_"}
    assert sta.parse_power(out)["Total"][2] > 0          # leakage
    assert (tmp_path / "sta.log").exists()

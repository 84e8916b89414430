"""The Yosys + OpenSTA flow runs on a small ESSOP array and reports a usable area split, timing and power."""
import pytest

from essop.app import cli
from essop.config import EssopConfig
from essop.synth import compare
from essop.synth.activity import vcd_toggle_rate
from essop.synth.flow import LIBRARIES, library

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def essop_2x3(tmp_path_factory):
    cfg = EssopConfig(rows=2, cols=3, bl=4)
    return cfg, compare.essop_row(cfg, "nangate15", tmp_path_factory.mktemp("synth"))


def test_essop_area_split_and_timing(essop_2x3):
    cfg, row = essop_2x3
    assert row["area_um2"] > 0
    # Both parts exist and add up to the whole: the counters (cell_i_j) and everything else.
    assert 0 < row["cells_area_um2"] < row["area_um2"]
    assert row["periphery_area_um2"] > 0
    assert row["cells_area_um2"] + row["periphery_area_um2"] == pytest.approx(row["area_um2"])
    assert row["fmax_ghz"] > 0
    assert row["energy_per_product_fj"] > 0
    assert 0 < row["toggle_rate"] < 1
    assert row["cycles_per_pair"] == cfg.bl
    assert row["n_flops"] > 0


def test_essop_per_net_activity(essop_2x3):
    cfg, row = essop_2x3
    # Every flip-flop's computed D equals its sampled Q one cycle later: the VCD-to-netlist mapping and the
    # gate-level evaluation agree with the RTL simulation.
    assert row["flop_check"] == 1.0
    found, total = map(int, row["flops_from_vcd"].split("/"))
    assert 0 < found <= total == row["n_flops"]
    assert 0 < row["net_activity_mean"] < 1
    assert 0 < row["sequential_power_share"] < 1
    assert row["energy_per_product_fj"] > 0 and row["energy_per_product_global_fj"] > 0
    # Flip-flops clocked every cycle are most of the array's power; gating the counters would remove part.
    assert 0.3 < row["clock_floor_share"] < 1
    assert row["gating_cells"] >= cfg.rows * cfg.cols
    assert 0 < row["energy_per_product_gated_est_fj"] < row["energy_per_product_fj"]


def test_per_instance_interpolation_matches_global(tmp_path):
    # With every net at one rate a, the per-instance interpolation must give OpenSTA's own total at a.
    from essop.hdl.fp16_mul import Fp16Multiplier
    from essop.synth import flow, netsim

    res = flow.synthesize(Fp16Multiplier(1), "fp16_mul", "nangate15", tmp_path, toggle_rate=0.2)
    lib = flow.library("nangate15")
    libs = flow._unpack(lib, tmp_path)
    out = flow._run_sta(tmp_path, "fp16_mul", libs, 1000.0, 0.23, "clk", per_instance=True)
    _, power = flow._parse_sta(out, 1000.0)
    netlist = netsim.parse_netlist(tmp_path / "netlist.v", "fp16_mul")
    cells = netsim.parse_liberty(libs)
    nets = {p for _, _, pins in netlist.instances for p in pins.values()}
    act = netsim.NetActivity({n: 0.23 for n in nets}, 10, 0, 0, 1.0, 0, 0)
    pn = flow._per_net_power(out, netlist, cells, act)
    internal, switching, _ = power["Total"]
    assert res.n_flops > 0
    assert pn["dynamic"] == pytest.approx(internal + switching, rel=1e-3)


def test_fp16_baseline_and_comparison(essop_2x3, tmp_path):
    _, erow = essop_2x3
    frow = compare.fp16_row(1, "nangate15", tmp_path)
    assert frow["n_flops"] > 0 and frow["fmax_ghz"] > 0 and frow["area_um2"] > 0
    c = compare.comparison(erow, frow)
    assert c["area_eff_ratio"] == pytest.approx(erow["throughput_per_area"] / frow["throughput_per_area"])
    assert c["area_eff_gain_pct"] == pytest.approx(100 * (c["area_eff_ratio"] - 1))


def test_unknown_library():
    with pytest.raises(ValueError) as e:
        library("nangate7")
    assert str(e.value) == f"unknown library 'nangate7'; known libraries: {', '.join(LIBRARIES)}"


def test_cli_unknown_library(capsys):
    assert cli.main(["synth", "--lib", "tsmc5"]) == 2
    err = capsys.readouterr().err
    assert "unknown library 'tsmc5'" in err and "nangate15" in err and "sky130hd" in err


def test_unknown_board(capsys):
    from essop.synth.fpga import BOARDS, board
    with pytest.raises(ValueError) as e:
        board("de10_nano")
    assert str(e.value) == f"unknown board 'de10_nano'; known boards: {', '.join(BOARDS)}"
    assert cli.main(["fpga", "--board", "arty_a7"]) == 2
    assert "unknown board 'arty_a7'" in capsys.readouterr().err


def test_vcd_toggle_rate(tmp_path):
    # One 2-bit signal toggling both bits every cycle, one 1-bit signal toggling every other cycle;
    # the clock is excluded: (2 * 4 + 2) toggles / (3 bits * 4 cycles).
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$var wire 1 ! clk $end\n$var wire 2 \" a $end\n$var wire 1 # b $end\n$enddefinitions $end\n"
                   "#0\n0!\nb00 \"\n0#\n#1\n1!\nb11 \"\n1#\n#2\nb00 \"\n#3\nb11 \"\n0#\n#4\nb00 \"\n")
    assert vcd_toggle_rate(vcd, 4) == pytest.approx(10 / 12)

"""essop.synth.flow (and the rows of essop.synth.compare built on it): the stages together on a small ESSOP
array give a usable area split, timing and power; the moved stage tests are in tests/synth/test_<stage>.py."""
import json

import pytest

from essop.app import cli
from essop.config import EssopConfig
from essop.synth import compare

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def essop_2x3(tmp_path_factory):
    """The configuration, its row, and its build folder."""
    cfg = EssopConfig(rows=2, cols=3, bl=4)
    root = tmp_path_factory.mktemp("synth")
    return cfg, compare.essop_row(cfg, "nangate15", root), root / f"nangate15_{cfg.name}"


def test_essop_area_split_and_timing(essop_2x3):
    cfg, row, _ = essop_2x3
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
    # Counts, not library tables: every cell of the flat netlist, of which the flip-flops are some.
    assert type(row["n_cells"]) is int and type(row["n_flops"]) is int
    assert row["n_cells"] > row["n_flops"]


def test_essop_per_net_activity(essop_2x3):
    cfg, row, build = essop_2x3
    # Every flip-flop's computed D equals its sampled Q one cycle later: the VCD-to-netlist mapping and the
    # gate-level evaluation agree with the RTL simulation.
    assert row["flop_check"] == 1.0
    # The flip-flops found by name in the VCD are some of all the netlist's flip-flops (the gate-level
    # simulation's own count, in the flow's result.json, agrees with the Liberty ff-group count n_flops).
    found = row["flops_from_vcd"]
    result = json.loads((build / "result.json").read_text())
    total = result["activity"]["flops"]
    assert 0 < found <= total == row["n_flops"]
    assert 0 < row["net_activity_mean"] < 1
    assert 0 < row["sequential_power_share"] < 1
    assert row["energy_per_product_fj"] > 0 and row["energy_per_product_global_fj"] > 0
    # Flip-flops clocked every cycle are most of the array's power; gating the counters would remove part.
    assert 0.3 < row["clock_floor_share"] < 1
    assert row["gating_cells"] >= cfg.rows * cfg.cols
    assert 0 < row["energy_per_product_gated_est_fj"] < row["energy_per_product_fj"]


def test_fp16_baseline_and_comparison(essop_2x3, tmp_path):
    _, erow, _ = essop_2x3
    frow = compare.fp16_row(1, "nangate15", tmp_path)
    assert frow["n_flops"] > 0 and frow["fmax_ghz"] > 0 and frow["area_um2"] > 0
    # n_cells and n_flops count the flat netlist's instances and its flip-flops (NanGate 15 nm: DFFRNQ_X1).
    from essop.synth.gatesim.netlist import parse_netlist
    gates = parse_netlist(tmp_path / "nangate15_fp16_mul_s1" / "netlist.v", "fp16_mul").instances
    assert frow["n_cells"] == len(gates)
    assert frow["n_flops"] == sum(ctype == "DFFRNQ_X1" for _, ctype, _ in gates)
    c = compare.comparison(erow, frow)
    assert c["area_eff_ratio"] == pytest.approx(erow["throughput_per_area"] / frow["throughput_per_area"])
    assert c["area_eff_gain_pct"] == pytest.approx(100 * (c["area_eff_ratio"] - 1))


def test_cli_unknown_library(capsys):
    assert cli.main(["synth", "--lib", "tsmc5"]) == 2
    err = capsys.readouterr().err
    assert "unknown library 'tsmc5'" in err and "nangate15" in err and "sky130hd" in err


@pytest.mark.parametrize("cell", ["updown", "upcount"])
def test_clock_gating_gates_each_counter_row(cell, tmp_path):
    """EssopConfig.clock_gating: every counter flip-flop of row i is a plain flip-flop on the clock of one
    gating cell of its own (one per row, enabled by the row's enable), the gate-level simulation still matches
    the RTL's flip-flops, and the gated counters' clock-driven power falls below the ungated twin's."""
    import re

    from essop.synth.gatesim.netlist import parse_netlist
    cfg = EssopConfig(rows=3, cols=4, bl=4, cell=cell, clock_gating=True)
    row = compare.essop_row(cfg, "nangate15", tmp_path)
    build = tmp_path / f"nangate15_{cfg.name}"
    gates = parse_netlist(build / "netlist.v", "essop").instances
    icg_out = {pins["Q"]: pins for _, ctype, pins in gates if ctype == "CLKGATETST_X1"}
    assert row["icg_cells"] == len(icg_out) >= cfg.rows and row["clock_gating"] is True
    assert all(p["CLK"] == "clk" and p["TE"] == "1'h0" for p in icg_out.values())
    clock_of_row: dict[int, set[str]] = {}
    for _, ctype, pins in gates:
        m = re.fullmatch(r"cell_grid\.cell_(\d+)_\d+\.count\[\d+\]", pins.get("Q", ""))
        if m:
            clock_of_row.setdefault(int(m.group(1)), set()).add(pins["CLK"])
    assert sorted(clock_of_row) == list(range(cfg.rows))
    row_clocks = [clocks.pop() for clocks in clock_of_row.values() if len(clocks) == 1]
    assert len(set(row_clocks)) == cfg.rows and all(c in icg_out for c in row_clocks)
    assert row["flop_check"] == 1.0
    assert row["icg_area_um2"] == pytest.approx(len(icg_out) * 0.835584)
    plain = compare.essop_row(cfg.replace(clock_gating=False), "nangate15", tmp_path)
    assert plain["icg_cells"] == 0 and plain["clock_gating"] is False
    gated_floor = row["clock_floor_share"] * row["energy_per_cycle_pj"]
    assert gated_floor < plain["clock_floor_share"] * plain["energy_per_cycle_pj"]

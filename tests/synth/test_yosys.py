"""essop.synth.yosys: the area and cell/flip-flop totals of a hierarchy from Yosys statistics, the instance
areas, escaped names, and a real run on a tiny counter with its result cache."""
import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.back import rtlil

from essop.synth import libraries, yosys

#: What `stat -json` writes for a top with its own cells and two instances of `sub` (areas include submodules).
STAT = {"modules": {
    "\\top": {"area": 30.0, "sequential_area": 12.0,
              "num_cells_by_type": {"NAND2_X1": 3, "DFFRNQ_X1": 1, "\\top.sub": 2}},
    "\\top.sub": {"area": 8.5, "sequential_area": 4.0, "num_cells_by_type": {"DFFRNQ_X1": 2, "INV_X1": 1}},
}}


def test_subtree_totals_counts_flip_flops_by_cell_set():
    memo, area, seq, cells, flops = yosys.subtree_totals(STAT, "top", {"DFFRNQ_X1"})
    assert (area, seq) == (30.0, 12.0)
    # Cells: 3 + 1 of the top, 2 x 3 in the instances; flip-flops: 1 + 2 x 2.
    assert (cells, flops) == (10, 5)
    assert memo["top.sub"] == (8.5, 4.0, 3, 2)
    # Flip-flops are what the set says, not what a name looks like.
    assert yosys.subtree_totals(STAT, "top", set())[4] == 0


def test_instance_areas():
    assert yosys.instance_areas(STAT, {"sub_0": "top.sub", "sub_1": "top.sub"}, "top") == {"sub_0": 8.5,
                                                                                          "sub_1": 8.5}


def test_vname():
    assert yosys.vname("essop") == "essop"
    assert yosys.vname("essop.cell_0_0") == "\\essop.cell_0_0"


class Counter(wiring.Component):
    en: In(1)
    count: Out(3)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.mark.slow
def test_run_yosys_maps_and_caches(tmp_path):
    libs = libraries.unpack(libraries.library("nangate15"), tmp_path)
    design = tmp_path / "design.il"
    design.write_text(rtlil.convert(Counter(), name="counter"))
    stat = yosys.run_yosys(design, "counter", libs, tmp_path, flatten=True, buffer=("BUF_X1", 3.0))
    assert stat["creator"].startswith("Yosys 0.70 ")
    _, area, _, cells, flops = yosys.subtree_totals(stat, "counter", {"DFFRNQ_X1"})
    assert flops == 3 and cells > flops and area > 0
    netlist = (tmp_path / "netlist.v").read_text()
    assert netlist.count("DFFRNQ_X1 ") == 3
    # Same inputs: the netlist on disk is reused (Yosys does not run: its log is not rewritten).
    log = tmp_path / "yosys.log"
    log.write_text("marker")
    assert yosys.run_yosys(design, "counter", libs, tmp_path, flatten=True, buffer=("BUF_X1", 3.0)) == stat
    assert log.read_text() == "marker"
    # Another ABC load is another netlist: Yosys runs again.
    yosys.run_yosys(design, "counter", libs, tmp_path, flatten=True, buffer=("BUF_X1", 6.0))
    assert log.read_text() != "marker"
    assert (tmp_path / "abc.constr").read_text() == "set_driving_cell BUF_X1\nset_load 6.0\n"


def test_clockgate_only_when_asked(tmp_path):
    """The script has the clock-gating lines only with a clockgate command, between synth and dfflibmap."""
    line = yosys.clockgate_command("CLKGATETST_X1", "E", "CLK", "Q", "TE")
    assert line.endswith(f"clockgate -pos CLKGATETST_X1 E:CLK:Q -tie_lo TE -min_net_size {yosys.GATE_MIN_BITS}")
    assert "-tie_lo" not in yosys.clockgate_command("dlclkp", "GATE", "CLK", "GCLK", None)
    plain = yosys.SCRIPT.format(rtlil="d.il", read_libs="", top="t", flatten="", libargs="", abc_extra="",
                                stat="s", netlist="n", clockgate="")
    gated = yosys.SCRIPT.format(rtlil="d.il", read_libs="", top="t", flatten="", libargs="", abc_extra="",
                                stat="s", netlist="n", clockgate=line + "\n")
    assert "clockgate" not in plain and "dfflegalize" not in plain
    assert gated.index("synth ") < gated.index("dfflegalize") < gated.index("clockgate") < gated.index("dfflibmap")


class ResetCounters(wiring.Component):
    """Two 4-bit counters with Amaranth's synchronous reset, on two enables, and a 2-bit one on a third."""
    en_a: In(1)
    en_b: In(1)
    en_c: In(1)
    a: Out(4)
    b: Out(4)
    c: Out(2)

    def elaborate(self, platform):
        m = Module()
        for en, reg in ((self.en_a, self.a), (self.en_b, self.b), (self.en_c, self.c)):
            with m.If(en):
                m.d.sync += reg.eq(reg + 1)
        return m


@pytest.mark.slow
def test_clockgate_gates_registers_with_reset(tmp_path):
    """Registers with a synchronous reset and an enable get one gating cell each; one narrower than
    GATE_MIN_BITS keeps its enable; the gated flip-flops are clocked by the gating cells' outputs."""
    import re
    libs = libraries.unpack(libraries.library("nangate15"), tmp_path)
    design = tmp_path / "design.il"
    design.write_text(rtlil.convert(ResetCounters(), name="top"))
    line = yosys.clockgate_command("CLKGATETST_X1", "E", "CLK", "Q", "TE")
    yosys.run_yosys(design, "top", libs, tmp_path, flatten=True, clockgate=line)
    netlist = (tmp_path / "netlist.v").read_text()
    gates = re.findall(r"CLKGATETST_X1 \S+ \(\s*\.CLK\(clk\),\s*\.E\((\S+)\),\s*\.Q\((\S+)\),\s*\.TE\(1'h0\)", netlist)
    assert len(gates) == 2
    clocks = re.findall(r"DFFRNQ_X1 \S+ \(\s*\.CLK\((\S+)\)", netlist)
    assert sorted(clocks.count(g) for _, g in gates) == [4, 4] and clocks.count("clk") == 2

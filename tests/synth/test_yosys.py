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

"""scripts/hier_area.py reads the hierarchical netlist the flow leaves in <build>/hier: its instance areas are
the ones the flow scaled to the flat total, cells and periphery add up, and it counts the flip-flops."""
import sys
from pathlib import Path

import pytest

from essop.config import EssopConfig
from essop.synth.flow import synthesize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import hier_area  # noqa: E402  (scripts/ is not a package)

pytestmark = pytest.mark.slow


def test_hier_summary_is_the_flows_split_before_scaling(tmp_path):
    from essop.hdl.array import EssopArray

    cfg = EssopConfig(rows=2, cols=2, bl=4)
    res = synthesize(EssopArray(cfg), "essop", "nangate15", tmp_path, split=True)
    s = hier_area.hier_summary(tmp_path)
    assert s["cells_area_um2"] + s["periphery_area_um2"] == pytest.approx(s["area_um2"])
    assert 0 < s["cells_area_um2"] < s["area_um2"]
    # The flow gives each instance its hierarchical share scaled to the flat total.
    scale = res.area_um2 / s["area_um2"]
    for inst, a in s["by_instance"].items():
        assert res.area_by_instance[inst] == pytest.approx(a * scale, rel=1e-9)
    # The counters are flip-flops of the hierarchical netlist too.
    assert s["n_flops"] >= cfg.rows * cfg.cols * cfg.count_width
    assert s["n_cells"] > s["n_flops"]

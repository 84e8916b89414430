"""ESSOP's claim: no multiplier anywhere in the unit. The elaborated netlist holds no $mul/$div/$mod cell."""
import pytest
from amaranth.back import rtlil

from essop.config import EssopConfig
from essop.hdl.array import EssopArray


@pytest.mark.parametrize("cfg", [
    EssopConfig(rows=3, cols=5),
    EssopConfig(rows=4, cols=4, sharing="per_element", output_format="count"),
    EssopConfig(rows=2, cols=3, acc_depth=7, scaling="block", lr_shift=-3),
    # The Sobol source: a Gray-code counter and XORs of direction words, the per-pair shift an LFSR.
    EssopConfig(rows=3, cols=4, rng="sobol"),
    EssopConfig(rows=4, cols=3, rng="sobol", sharing="per_element", rng_shift=True, output_format="count"),
    EssopConfig(rows=4, cols=3, sharing="per_element", element_words=True),
], ids=lambda c: c.name)
def test_essop_array_has_no_arithmetic_multiplier(cfg):
    text = rtlil.convert(EssopArray(cfg))
    cells = {line.split()[1] for line in text.splitlines() if line.strip().startswith("cell ")}
    assert cells, "no cells found: the RTLIL format changed and this test checks nothing"
    assert not cells & {"$mul", "$div", "$mod", "$divfloor", "$modfloor", "$pow"}

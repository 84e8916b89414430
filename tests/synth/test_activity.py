"""essop.synth.activity: the design-wide toggle rate of an RTL simulation's VCD."""
import pytest

from essop.synth.activity import vcd_toggle_rate


def test_vcd_toggle_rate(tmp_path):
    # One 2-bit signal toggling both bits every cycle, one 1-bit signal toggling every other cycle;
    # the clock is excluded: (2 * 4 + 2) toggles / (3 bits * 4 cycles).
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$var wire 1 ! clk $end\n$var wire 2 \" a $end\n$var wire 1 # b $end\n$enddefinitions $end\n"
                   "#0\n0!\nb00 \"\n0#\n#1\n1!\nb11 \"\n1#\n#2\nb00 \"\n#3\nb11 \"\n0#\n#4\nb00 \"\n")
    assert vcd_toggle_rate(vcd, 4) == pytest.approx(10 / 12)

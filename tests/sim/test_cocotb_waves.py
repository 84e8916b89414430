"""Waveforms on demand: `waves=True` (essop verify --waves, or WAVES=1) records an FST (Icarus) or a VCD
(Verilator) per run, and a mismatch report names the group's pairs, the row, the cycle and time window and
the waveform file."""
import re

import pytest

from essop.config import EssopConfig
from essop.sim.runner import run_cocotb

pytestmark = pytest.mark.cocotb


@pytest.mark.parametrize("simulator,suffix", [("icarus", ".fst"), ("verilator", ".vcd")])
def test_forced_mismatch_reports_pairs_row_window_and_waveform(tmp_path, simulator, suffix):
    cfg = EssopConfig(rows=2, cols=3, bl=4)
    res = run_cocotb(cfg, simulator, tmp_path, pairs=4, corrupt=True, waves=True)
    assert not res.passed and res.mismatches == 1
    assert res.waves is not None and res.waves.endswith(suffix)
    with open(res.waves, "rb") as fh:
        head = fh.read(64)
    assert len(head) == 64                               # a real, non-empty waveform file
    line = res.errors[0]
    m = re.search(r"group (\d+) \(pairs? (\d+)(?:\.\.(\d+))?\) row (\d+): .*\[cycles (\d+)\.\.(\d+), (\d+)\.\.(\d+) ns\] "
                  r"\(waveform: (.+)\)$", line)
    assert m, line
    assert int(m.group(5)) < int(m.group(6)) and int(m.group(7)) < int(m.group(8))
    assert m.group(9) == res.waves


def test_no_waveform_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("WAVES", raising=False)
    res = run_cocotb(EssopConfig(rows=2, cols=2, bl=2), "icarus", tmp_path, pairs=2)
    assert res.passed and res.waves is None


def test_waves_environment_variable_turns_it_on(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVES", "1")
    res = run_cocotb(EssopConfig(rows=2, cols=2, bl=2), "icarus", tmp_path, pairs=2)
    assert res.passed and res.waves and res.waves.endswith(".fst")

"""The generated IP: Verilog, configuration JSON, a FuseSoC core and a file list side by side; FuseSoC reads
the core, lints the RTL through its `lint` target and runs the cocotb regression through its `sim` target."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from essop.config import EssopConfig
from essop.hdl import TOP_NAME
from essop.hdl.ip import core_name, write_ip

CFG = EssopConfig(rows=2, cols=3, bl=4, sharing="per_element")


def _fusesoc(root: Path, *args):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([str(Path(sys.executable).parent / "fusesoc"), "--cores-root", str(root), *args],
                          capture_output=True, text=True, cwd=root, env=env, timeout=600)


def test_write_ip_writes_verilog_config_core_and_file_list(tmp_path):
    paths = write_ip(CFG, tmp_path / "ip" / "array.v")
    assert {k: p.name for k, p in paths.items()} == {"verilog": "array.v", "config": "array.json",
                                                     "core": "array.core", "filelist": "array.f"}
    assert f"module {TOP_NAME}" in paths["verilog"].read_text()
    assert EssopConfig.from_json(paths["config"].read_text()) == CFG
    assert paths["filelist"].read_text().split() == ["array.v"]
    text = paths["core"].read_text()
    assert text.startswith("CAPI=2:\n")
    core = yaml.safe_load(text)
    assert core["name"] == core_name(CFG)
    assert core["targets"]["default"]["toplevel"] == TOP_NAME
    assert core["filesets"]["rtl"]["files"] == ["array.v"]
    assert set(core["targets"]) == {"default", "lint", "sim"}
    # The configuration is in the comments too: the core file alone says what it holds.
    comment = "\n".join(line[3:] for line in text.splitlines() if line.startswith("#   "))
    assert EssopConfig.from_json(comment) == CFG


def test_fusesoc_reads_the_core_and_lints_the_rtl(tmp_path):
    write_ip(CFG, tmp_path / "array.v")
    shown = _fusesoc(tmp_path, "core", "show", core_name(CFG))
    assert shown.returncode == 0, shown.stderr
    assert core_name(CFG) in shown.stdout and "lint" in shown.stdout and "sim" in shown.stdout
    lint = _fusesoc(tmp_path, "run", "--target=lint", core_name(CFG))
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr[-2000:]


@pytest.mark.cocotb
def test_fusesoc_sim_target_runs_the_cocotb_regression(tmp_path):
    write_ip(CFG, tmp_path / "array.v")
    run = _fusesoc(tmp_path, "run", "--target=sim", core_name(CFG))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PASS: RTL equals the golden model bit for bit" in run.stdout
    summaries = list(tmp_path.glob("build/*/sim-icarus/essop_verify/cocotb/*/summary.json"))
    assert len(summaries) == 1 and json.loads(summaries[0].read_text())["mismatches"] == 0

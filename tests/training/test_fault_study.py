"""essop faults: the fidelity and training measurements under faults, on a small network and data; the
command's output files and its refusals."""
import argparse
import csv
import math
import subprocess
import sys

import pytest

from training_fixtures import write_batches
from essop.app import training_commands
from essop.config import EssopConfig
from essop.training import fault_study


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_batches(tmp_path_factory.mktemp("faults") / "b", n_train=64, n_test=16)


def test_fidelity_falls_with_the_rate(data, tmp_path):
    opts = fault_study.StudyOptions(rates=(0.0, 1e-3), batch_size=16, subset=64, test_subset=16, data=str(data),
                                    cache_dir=str(tmp_path / "cache"), cfg=EssopConfig(bl=8))
    rows = fault_study.fidelity_rows(opts)
    layers = 10
    assert len(rows) == 2 * 2 * layers
    clean = [r["cosine"] for r in rows if r["rate"] == 0.0 and r["arithmetic"] == "fp32"]
    assert len(clean) == layers and all(abs(c - 1.0) < 1e-12 for c in clean)   # no flips: its own reference
    def median(rate):
        vals = sorted(r["cosine"] for r in rows if r["rate"] == rate and r["arithmetic"] == "essop")
        return vals[len(vals) // 2]
    assert all(not math.isnan(r["cosine"]) for r in rows if r["arithmetic"] == "essop")   # counts stay finite
    assert median(1e-3) < median(0.0)


def test_command_writes_table_plot_and_csvs(data, tmp_path):
    parser = argparse.ArgumentParser()
    training_commands.add_arguments("faults", parser)
    args = parser.parse_args(["--rates", "0", "1e-4", "--subset", "32", "--test-subset", "16", "--epochs", "1",
                              "--batch-size", "16", "--bl", "8", "--data", str(data), "--cache-dir",
                              str(tmp_path / "cache"), "--out", str(tmp_path / "f"), "--threads", "1"])
    assert training_commands.run("faults", args) == 0
    with open(tmp_path / "f" / "faults_training.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["arithmetic"], r["rate"]) for r in rows} == {("essop", "0.0"), ("essop", "0.0001"),
                                                            ("fp32", "0.0"), ("fp32", "0.0001")}
    md = (tmp_path / "f" / "faults.md").read_text()
    assert md.startswith("| bit-flip rate | ESSOP median layer cosine |") and "| 0.0001 |" in md
    assert (tmp_path / "f" / "faults.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, needle", [
    (["--rates", "2"], "a rate must be a number in [0, 1], not '2'"),
    (["--sharing", "per_element"], "fault injection in the training kernel needs sharing='shared'"),
    (["--device", "cuda"], "essop faults runs on the CPU"),
    (["--model", "resnet7"], "model must be one of"),
])
def test_bad_options_one_line_exit_2(argv, needle, tmp_path):
    res = subprocess.run([sys.executable, "-m", "essop.app", "faults", *argv, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert not (tmp_path / "o").exists()

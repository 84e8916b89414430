"""Training runs on tiny synthetic data: every mode learns; an interrupted and resumed run ends with the same
weights, bit for bit, as an uninterrupted one; the CLI writes its logs and checkpoints."""
import json
import subprocess
import sys

import pytest
import torch

from training_fixtures import write_batches
from essop.config import EssopConfig
from essop.training.train import TrainOptions, train


def _opts(tmp_path, data, bl=16, sharing="shared", **kw):
    base = dict(mode="essop", essop=EssopConfig(bl=bl, sharing=sharing), epochs=3, batch_size=32,
                model="resnet8", data=str(data),
                cache_dir=str(tmp_path / "cache"), threads=1, seed=3, out=str(tmp_path / "run"), progress=False)
    base.update(kw)
    return TrainOptions(**base)


@pytest.mark.parametrize("mode,sharing", [("fp32", "shared"), ("essop", "shared"), ("essop", "per_element"),
                                          ("expected", "shared")])
def test_every_mode_learns(tmp_path, mode, sharing):
    # per_element has no row skipping (see docs/training.md): a shorter BL keeps this test quick.
    data = write_batches(tmp_path / "b", n_train=64 if sharing == "per_element" else 128, n_test=40)
    s = train(_opts(tmp_path, data, mode=mode, sharing=sharing, epochs=6, lr=0.1,
                    bl=4 if sharing == "per_element" else 16))
    hist = json.loads((tmp_path / "run" / "log.json").read_text())
    losses = [r["train_loss"] for r in hist]
    assert s["epochs_done"] == 6 and len(hist) == 6
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.8 * losses[0], losses
    assert (tmp_path / "run" / "log.csv").read_text().startswith("epoch,lr,train_loss")


def test_resume_mid_epoch_is_bit_exact(tmp_path):
    data = write_batches(tmp_path / "b", n_train=96, n_test=20)
    train(_opts(tmp_path, data, out=str(tmp_path / "full"), epochs=2))
    first = train(_opts(tmp_path, data, out=str(tmp_path / "cut"), epochs=2, stop_after_steps=4))
    assert first["stopped"] == "stop_after_steps" and first["epochs_done"] == 1 and first["step"] == 1
    ck = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert (ck["epoch"], ck["step"]) == (1, 1)
    second = train(_opts(tmp_path, data, out=str(tmp_path / "cut"), epochs=2, resume=True))
    assert second["epochs_done"] == 2 and second["stopped"] is None
    a = torch.load(tmp_path / "full" / "model.pt")
    b = torch.load(tmp_path / "cut" / "model.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert int(a["conv1.essop_pairs"]) == 2 * 96 * 32 * 32          # LFSR run-on counter survived the resume
    full = json.loads((tmp_path / "full" / "log.json").read_text())
    cut = json.loads((tmp_path / "cut" / "log.json").read_text())
    assert [r["train_loss"] for r in full] == [r["train_loss"] for r in cut]
    assert [r["test_acc"] for r in full] == [r["test_acc"] for r in cut]


def test_cli_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path):
    data = write_batches(tmp_path / "b", n_train=512, n_test=20)
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "essop.app", "train", "--mode", "essop", "--bl", "8", "--epochs", "3",
           "--batch-size", "32", "--model", "resnet8", "--data", str(data), "--cache-dir", str(tmp_path / "cache"),
           "--threads", "1", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for the first epoch's log line, then interrupt the run in the middle of the second epoch.
    for line in proc.stderr:
        if "epoch 1/3" in line:
            break
    proc.terminate()
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    summary = json.loads(stdout[stdout.index("{"):])
    assert summary["stopped"] == "SIGTERM"
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert (ck["epoch"], ck["step"]) == (summary["epochs_done"], summary["step"])
    assert summary["epochs_done"] >= 1 and summary["step"] > 0        # saved in the middle of an epoch
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    done = json.loads(res.stdout[res.stdout.index("{"):])
    assert done["epochs_done"] == 3 and done["stopped"] is None
    assert len(json.loads((out / "log.json").read_text())) == 3

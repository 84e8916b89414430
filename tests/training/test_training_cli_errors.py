"""Bad input to `essop train` answers in one line with exit status 2 and touches no file: invalid
configurations and options, missing / corrupt / wrongly laid out data, damaged or foreign checkpoints, a CUDA
device that is not there, an existing run folder, --resume without a checkpoint. And the schedules are sane
for any epoch count."""
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from training_fixtures import write_batches
from essop.training.train import TrainOptions, lr_at

SMALL = ["--model", "resnet8", "--batch-size", "16", "--subset", "32", "--test-subset", "16", "--threads", "1",
         "--no-progress"]


def _essop(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "essop.app", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _snapshot(folder: Path) -> dict:
    """Every file under folder with its content hash (what 'touches no file' compares)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_exit_2(res, needle):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("essop train: error: ") and needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_batches(tmp_path_factory.mktemp("data") / "b", n_train=64, n_test=16)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data):
    """A stopped run (checkpoint mid-epoch) of BL 8 that the checkpoint cases start from."""
    root = tmp_path_factory.mktemp("run")
    out = root / "run"
    res = _essop("train", "--bl", "8", "--epochs", "2", "--data", data, "--cache-dir", root / "cache",
                 "--stop-after-steps", "1", "--out", out, *SMALL)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "checkpoint.pt").exists()
    return root, out


@pytest.mark.parametrize("args,needle", [
    (["--bl", "3"], "bl must be a power of two, not 3"),
    (["--sharing", "foo"], "sharing must be one of 'shared', 'per_element', not 'foo'"),
    (["--lr", "-1"], "lr must be a positive number, not -1.0"),
    (["--lr", "nan"], "lr must be a positive number, not nan"),
    (["--weight-decay", "-0.1"], "weight_decay must be >= 0"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "cuda"),
    (["--model", "vgg"], "model must be one of"),
    (["--lfsr-width", "25", "--lfsr-seed-x", "1", "--lfsr-seed-d", "1"], "width <= 24"),
])
def test_bad_options_one_line_and_no_folder(tmp_path, data, args, needle):
    out = tmp_path / "out"
    res = _essop("train", "--data", data, "--cache-dir", tmp_path / "cache", "--out", out, *SMALL, *args)
    _one_line_exit_2(res, needle)
    assert not out.exists()


def test_bad_data_one_line_and_no_folder(tmp_path):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("images/cat/0001.png", b"x")
    empty = tmp_path / "batches"
    empty.mkdir()
    truncated = tmp_path / "trunc"
    write_batches(truncated, n_train=20, n_test=4)
    (truncated / "data_batch_1").write_bytes((truncated / "data_batch_1").read_bytes()[:100])
    cases = [(tmp_path / "missing.zip", "CIFAR-10 not found at"),
             (garbage, "is not a readable CIFAR-10 zip"),
             (wrong, "unexpected member 'images/cat/0001.png'"),
             (empty, "no data_batch_* files"),
             (truncated, "is not a readable cifar-10-batches-py folder")]
    for path, needle in cases:
        out = tmp_path / f"out_{path.name}"
        res = _essop("train", "--data", path, "--cache-dir", tmp_path / "cache", "--out", out, *SMALL)
        _one_line_exit_2(res, needle)
        assert not out.exists()


def test_existing_run_folder_is_refused_and_kept(finished_run, data):
    root, out = finished_run
    before = _snapshot(out)
    res = _essop("train", "--bl", "8", "--epochs", "2", "--data", data, "--cache-dir", root / "cache",
                 "--out", out, *SMALL)
    _one_line_exit_2(res, "already holds a run")
    assert "--resume" in res.stderr and "--overwrite" in res.stderr
    assert _snapshot(out) == before


def test_resume_from_another_configuration_is_refused(finished_run, data):
    root, out = finished_run
    before = _snapshot(out)
    res = _essop("train", "--bl", "16", "--epochs", "2", "--data", data, "--cache-dir", root / "cache",
                 "--out", out, "--resume", *SMALL)
    _one_line_exit_2(res, "was written by a different run: essop=")
    assert _snapshot(out) == before


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated", "not_a_checkpoint"])
def test_damaged_checkpoint_is_refused(tmp_path, finished_run, data, damage):
    root, run = finished_run
    out = tmp_path / "copy"
    out.mkdir()
    for f in run.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    ck = out / "checkpoint.pt"
    if damage == "zero_bytes":
        ck.write_bytes(b"")
    elif damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:2000])
    else:
        torch.save({"weights": torch.zeros(3)}, ck)
    before = _snapshot(out)
    res = _essop("train", "--bl", "8", "--epochs", "2", "--data", data, "--cache-dir", root / "cache",
                 "--out", out, "--resume", *SMALL)
    _one_line_exit_2(res, "checkpoint")
    assert _snapshot(out) == before


def test_resume_without_checkpoint_is_an_error_and_auto_starts(tmp_path, data):
    out = tmp_path / "fresh"
    res = _essop("train", "--data", data, "--cache-dir", tmp_path / "cache", "--out", out, "--resume", *SMALL)
    _one_line_exit_2(res, "holds no checkpoint.pt")
    assert not out.exists()
    res = _essop("train", "--epochs", "1", "--data", data, "--cache-dir", tmp_path / "cache", "--out", out,
                 "--resume", "auto", *SMALL)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "summary.json").exists()


def test_overwrite_replaces_a_run(tmp_path, finished_run, data):
    root, run = finished_run
    out = tmp_path / "copy"
    out.mkdir()
    for f in run.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    res = _essop("train", "--bl", "8", "--epochs", "1", "--data", data, "--cache-dir", root / "cache",
                 "--out", out, "--overwrite", *SMALL)
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"epochs_done": 1' in (out / "summary.json").read_text()


@pytest.mark.parametrize("epochs", [1, 2, 3, 160])
def test_schedules_are_sane_for_any_epoch_count(epochs):
    step = TrainOptions(lr=0.1, schedule="step")
    lrs = [lr_at(step, e, epochs) for e in range(epochs)]
    assert lrs[0] == 0.1                                    # never starts at lr/100 (one-epoch runs did)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.1 * 0.1 ** ((epochs - 1 >= 0.5 * epochs) + (epochs - 1 >= 0.75 * epochs)))
    cos = TrainOptions(lr=0.1, schedule="cosine", warmup_epochs=1)
    per = 10
    seq = [lr_at(cos, e, epochs, s, per) for e in range(epochs) for s in range(per)]
    assert seq[per - 1] == pytest.approx(0.1) and max(seq) <= 0.1 + 1e-12 and min(seq) > 0
    after = seq[per:]
    assert all(a >= b for a, b in zip(after, after[1:]))      # warm-up, then decay only
    if epochs >= 3:
        assert seq[-1] < 0.01                                 # the last steps run at nearly zero

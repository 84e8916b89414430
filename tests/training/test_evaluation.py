"""`essop evaluate` on tiny synthetic runs: the reported accuracy is the log's, the recomputed BatchNorm
statistics depend on the weights alone (not on the running statistics the run kept), a stopped run is
evaluated from its checkpoint and recognised as such, and bad input is one line with exit status 2."""
import json
import subprocess
import sys

import pytest
import torch

from essop.training.evaluation import EVAL_FILE, correct_images, evaluate_run, read_evaluation
from training_fixtures import write_batches


def _essop(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "essop.app", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_batches(tmp_path_factory.mktemp("data"), n_train=96, n_test=40)


def _train(data, out, *extra):
    res = _essop("train", "--model", "resnet8", "--mode", "essop", "--bl", "8", "--epochs", "1",
                 "--batch-size", "32", "--data", data, "--cache-dir", out.parent / "cache", "--threads", "1",
                 "--no-progress", "--out", out, *extra)
    assert res.returncode == 0, res.stderr
    return json.loads((out / "log.json").read_text()) if (out / "log.json").exists() else []


def _env(data, tmp_path):
    return {"threads": 1, "data": str(data), "cache_dir": str(tmp_path / "cache")}


def test_a_finished_run_is_evaluated_from_its_final_weights(data, tmp_path):
    run = tmp_path / "run"
    log = _train(data, run)
    res = _essop("evaluate", run, "--bn-images", 64, "--threads", 1, "--data", data, "--cache-dir", tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    ev = json.loads((run / EVAL_FILE).read_text())
    assert (ev["weights"], ev["epoch"], ev["step"], ev["test_images"], ev["bn_images"]) == ("model.pt", 1, 0, 40, 64)
    # With the run's own statistics it is the run's last evaluation, exactly.
    assert ev["test_acc"] == log[-1]["test_acc"] and ev["test_loss"] == log[-1]["test_loss"]
    hits = correct_images(read_evaluation(run, 1))
    assert hits.dtype == bool and len(hits) == 40 and hits.sum() == round(40 * log[-1]["test_acc"])
    assert f"{100 * ev['bn_test_acc']:.2f} % with statistics recomputed on 64 training images" in res.stdout
    assert read_evaluation(run, 1) is not None and read_evaluation(run, 2) is None
    # An eval.json from before a field existed is stale too: the campaign evaluates the row again.
    older = {k: v for k, v in ev.items() if k != "test_correct"}
    (run / EVAL_FILE).write_text(json.dumps(older))
    assert read_evaluation(run, 1) is None
    # One from a later version, with a field this one does not know, still reads.
    (run / EVAL_FILE).write_text(json.dumps({**ev, "a_later_field": 1}))
    assert read_evaluation(run, 1) is not None
    (run / EVAL_FILE).write_text(json.dumps(ev))

    # The recomputed statistics come from the weights alone: wreck the running statistics of every BatchNorm
    # layer and the recomputed accuracy and loss do not move, while the reported ones do.
    weights = torch.load(run / "model.pt", weights_only=True)
    for key in weights:
        if key.endswith("running_mean"):
            weights[key] += 50.0
        elif key.endswith("running_var"):
            weights[key] *= 1e4
    torch.save(weights, run / "model.pt")
    wrecked = evaluate_run(run, 64, **_env(data, tmp_path))
    assert wrecked.bn_test_acc == ev["bn_test_acc"] and wrecked.bn_test_loss == ev["bn_test_loss"]
    assert wrecked.test_loss != ev["test_loss"]


def test_a_stopped_run_is_evaluated_from_its_checkpoint(data, tmp_path):
    run = tmp_path / "stopped"
    _train(data, run, "--stop-after-steps", "2")
    ev = evaluate_run(run, 32, **_env(data, tmp_path))
    assert (ev.weights, ev.epoch, ev.step, ev.bn_images) == ("checkpoint.pt", 0, 2, 32)
    assert 0.0 <= ev.bn_test_acc <= 1.0
    # Mid-epoch weights are not those of any finished epoch: a report does not take them as final.
    assert read_evaluation(run, 0) is None


@pytest.mark.parametrize("damage, message", [
    ("no_config", "holds no config.json"),
    ("no_weights", "holds neither model.pt of a finished run nor checkpoint.pt"),
    ("corrupt_weights", "is not readable weights"),
    ("bad_config", "is not an `essop train` configuration"),
    ("bad_summary", "summary.json is not an `essop train` summary"),
])
def test_bad_run_folders_are_one_line_and_exit_2(data, tmp_path, damage, message):
    run = tmp_path / "run"
    _train(data, run)
    if damage == "no_config":
        (run / "config.json").unlink()
    elif damage == "no_weights":
        (run / "model.pt").unlink()
        (run / "checkpoint.pt").unlink()
    elif damage == "corrupt_weights":
        (run / "model.pt").write_bytes(b"not a torch file")
    elif damage == "bad_summary":
        (run / "summary.json").write_text("{truncated")
    else:
        (run / "config.json").write_text("{}")
    res = _essop("evaluate", run, "--threads", 1, "--data", data, "--cache-dir", tmp_path / "cache")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert not (run / EVAL_FILE).exists()


def test_bn_images_must_be_positive(tmp_path):
    res = _essop("evaluate", tmp_path, "--bn-images", 0)
    assert res.returncode == 2 and "must be >= 1" in res.stderr
    with pytest.raises(ValueError, match="bn_images must be a positive int"):
        evaluate_run(tmp_path, 0)

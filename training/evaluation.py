"""`essop evaluate`: test a run's weights twice, with the BatchNorm running statistics it trained and with
statistics recomputed from its weights, and keep the result in the run folder (eval.json).

Why: evaluation uses the running averages (momentum 0.1) that every BatchNorm layer kept during training.
When the weights move fast (a high learning rate, a noisy update) those averages lag the weights and the test
accuracy reads far below what the weights can do (docs/results.md, "BatchNorm running statistics"). Recomputing
the statistics with the weights frozen (`torch.optim.swa_utils.update_bn`: a cumulative average over the
given images, no gradient, no weight changes) separates the two: the first number is the run's reported
accuracy, the second is its weights'. Nothing about the run changes; eval.json records which weights (model.pt
of a finished run, else checkpoint.pt) and which epoch and step they are, so a report can tell a current
evaluation from a stale one. It also records which test images the weights classify correctly, so that two
rows evaluated on the same images can be compared image by image (the campaign's paired confidence interval of
a row's gap to FP32).

The recomputation reads the run's own training images, the first `bn_images` of a fixed permutation (seed 0),
with the training augmentation drawn from a fixed generator, in batches of the run's batch size.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from essop.training import data as cdata, models
from essop.training.train import TrainOptions, evaluate, evaluate_images, load_checkpoint, load_run_data

__all__ = ["Evaluation", "evaluate_run", "read_evaluation", "correct_images", "EVAL_FILE", "DEFAULT_BN_IMAGES"]

EVAL_FILE = "eval.json"
DEFAULT_BN_IMAGES = 10_000
EVAL_BATCH = 500


@dataclass
class Evaluation:
    weights: str
    """The file the weights came from: model.pt (a finished run) or checkpoint.pt."""
    epoch: int
    """Finished epochs of those weights."""
    step: int
    """Steps into the next epoch (0: the weights of an epoch's end)."""
    test_images: int
    test_acc: float
    """With the running statistics the run kept (what its log reports)."""
    test_loss: float
    test_correct: str
    """Which test images (in the run's test order) those weights classify correctly: the bits packed
    big-endian into bytes (numpy.packbits), as hex. Rows evaluated on the same test images compare image by
    image (`correct_images`): paired statistics of their accuracy difference."""
    bn_images: int
    bn_test_acc: float
    """With statistics recomputed from the weights on `bn_images` training images."""
    bn_test_loss: float
    seconds: float
    device: str
    torch: str


def _run_options(folder: Path, device: str, threads: int | None, data: str | None,
                 cache_dir: str | None) -> TrainOptions:
    """The TrainOptions of the run in `folder`, with this evaluation's environment."""
    config = folder / "config.json"
    if not config.exists():
        raise FileNotFoundError(f"{folder} holds no config.json: not an `essop train` run folder")
    try:
        options = json.loads(config.read_text())["options"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{config} is not an `essop train` configuration ({type(exc).__name__}: {exc})") from None
    options.update(device=device, threads=threads, resume="no", overwrite=False, progress=False)
    if data is not None:
        options["data"] = data
    if cache_dir is not None:
        options["cache_dir"] = cache_dir
    known = TrainOptions.__dataclass_fields__
    return TrainOptions(**{k: v for k, v in options.items() if k in known})


def _weights(folder: Path, device) -> tuple[str, dict, int, int]:
    """(file, state dict, epoch, step): model.pt when the run finished, else its checkpoint's model."""
    summary = folder / "summary.json"
    try:
        state = json.loads(summary.read_text()) if summary.exists() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{summary} is not an `essop train` summary ({exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{summary} is not an `essop train` summary (not a JSON object)")
    done = state.get("stopped") is None and state.get("epochs_done", 0) >= state.get("epochs", 1)
    if done and (folder / "model.pt").exists():
        try:
            weights = torch.load(folder / "model.pt", map_location=device, weights_only=True)
        except Exception as exc:      # torch reports a damaged file through several exception types
            raise ValueError(f"{folder / 'model.pt'} is not readable weights ({type(exc).__name__}: {exc})") from None
        return "model.pt", weights, int(state["epochs_done"]), int(state["step"])
    if not (folder / "checkpoint.pt").exists():
        raise FileNotFoundError(f"{folder} holds neither model.pt of a finished run nor checkpoint.pt")
    ck = load_checkpoint(folder / "checkpoint.pt", device)
    return "checkpoint.pt", ck["model"], int(ck["epoch"]), int(ck["step"])


def evaluate_run(folder: str | Path, bn_images: int = DEFAULT_BN_IMAGES, device: str = "cpu",
                 threads: int | None = None, data: str | None = None, cache_dir: str | None = None) -> Evaluation:
    """Evaluate the weights in run folder `folder` (see the module docstring) and write its eval.json."""
    folder = Path(folder)
    if isinstance(bn_images, bool) or not isinstance(bn_images, int) or bn_images < 1:
        raise ValueError(f"bn_images must be a positive int, not {bn_images!r}")
    opts = _run_options(folder, device, threads, data, cache_dir)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    t0 = time.perf_counter()
    name, state, epoch, step = _weights(folder, dev)
    model = models.build(opts.model).to(dev)
    model.load_state_dict(state)
    run = load_run_data(opts, dev)
    test_loss, hits = evaluate_images(model, run.x_test, run.y_test, run.norm, dev, EVAL_BATCH)

    pick = cdata.subset_indices(len(run.x_train), bn_images, seed=0)
    # Augmented as in training: the layers learned to work with the statistics of padded, cropped, flipped
    # images (recomputed on plain images, a finished FP32 run tests about 1 pp lower than with its own).
    images = cdata.augment(run.x_train[torch.from_numpy(pick).to(dev)], cdata.step_generator(0, -1, -1))
    size = opts.batch_size
    batches = [run.norm(images[i:i + size]) for i in range(0, len(images), size)]
    torch.optim.swa_utils.update_bn(batches, model, dev)
    bn_loss, bn_acc = evaluate(model, run.x_test, run.y_test, run.norm, dev, EVAL_BATCH)

    result = Evaluation(weights=name, epoch=epoch, step=step, test_images=len(run.x_test),
                        test_acc=float(hits.mean()) if len(hits) else 0.0, test_loss=test_loss,
                        test_correct=np.packbits(hits).tobytes().hex(), bn_images=len(pick), bn_test_acc=bn_acc,
                        bn_test_loss=bn_loss,
                        seconds=time.perf_counter() - t0, device=str(dev), torch=torch.__version__)
    tmp = folder / f"{EVAL_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    tmp.replace(folder / EVAL_FILE)
    return result


def correct_images(ev: Evaluation) -> np.ndarray:
    """bool [test_images]: the images ev's weights classify correctly (with the run's own statistics)."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(ev.test_correct), dtype=np.uint8))
    return bits[:ev.test_images].astype(bool)


def read_evaluation(folder: Path, epochs_done: int) -> Evaluation | None:
    """The folder's eval.json if it evaluated the weights at the end of epoch `epochs_done` (the run's
    latest finished epoch), else None (missing, unreadable, stale, or written before a field existed: the
    campaign then evaluates the row again)."""
    path = folder / EVAL_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        # Fields a later version adds are ignored; a field this version needs and the file lacks makes it stale.
        ev = Evaluation(**{k: v for k, v in data.items() if k in Evaluation.__dataclass_fields__})
    except (json.JSONDecodeError, TypeError, AttributeError):
        return None
    return ev if (ev.epoch, ev.step) == (epochs_done, 0) else None


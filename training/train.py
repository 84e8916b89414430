"""The training loop: ResNet-32 on CIFAR-10 with fp32, essop or expected weight updates.

Recipe (He et al.): SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 50 % and 75 % of
the epochs. Outputs in --out: config.json, log.csv and log.json (one row per epoch), checkpoint.pt (written
atomically every epoch and when SIGINT/SIGTERM arrives mid-epoch), curves.png at the end.

Resume (--resume) restores the model (including every layer's LFSR pair counter), the optimizer, the epoch
and step inside it, the partial epoch statistics and the RNG states; the data order and augmentation of any
step are functions of (seed, epoch, step), so a resumed run replays exactly what the uninterrupted run does
(bit-exact on CPU with one thread: tests/training/test_training_run.py).

Data parallel (torchrun, WORLD_SIZE > 1): each rank takes its slice of every global batch; the loss is the
sum over the rank's images divided by the global batch size, FP32 gradients are all-reduced with SUM, and
ESSOP layers all-reduce their integer counts inside the backward pass (exact). Only rank 0 evaluates,
logs and writes checkpoints; BatchNorm statistics are per rank (rank 0's are the ones saved).
"""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from essop.config import EssopConfig
from essop.plotting import pyplot, save_figure
from essop.training import data as cdata, models
from essop.training.layers import MODES, SCALINGS, EssopUpdate, attach, essop_layers

__all__ = [
    "TrainOptions", "Trainer", "RunData", "load_run_data", "train", "train_step", "evaluate", "evaluate_images",
    "lr_at", "build_model", "make_optimizer",
    "load_checkpoint", "run_identity", "SCHEDULES", "RESUME_MODES"
]

SCHEDULES = ("step", "cosine")
RESUME_MODES = ("no", "yes", "auto")
#: What a run folder holds; a new run refuses a folder with any of these unless told to overwrite.
RUN_FILES = ("checkpoint.pt", "config.json", "log.csv", "log.json", "summary.json", "model.pt", "curves.png",
             "eval.json")
LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s", "wall_s", "steps")


@dataclass
class TrainOptions:
    mode: str = "essop"
    essop: EssopConfig = field(default_factory=EssopConfig)
    """The user's array configuration (BL, q, sharing, LFSR fields); every layer's virtual array is this with
    rows, cols, acc_depth, scaling and output_format set for the layer (layers.py)."""
    epochs: int = 160
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "step"
    """'step': lr divided by 10 at 50 % and 75 % of the epochs (He et al.); 'cosine': linear warm-up over
    `warmup_epochs`, then a cosine decay to zero at the last step (set per step)."""
    warmup_epochs: float = 0.0
    scaling: str = "per_pair"
    """Exponent granularity of the ESSOP update: 'per_pair' (the array's default), 'block' (one per layer
    and minibatch) or 'per_sample' (block groups of one image each); see layers.py."""
    model: str = "resnet32"
    """A name of essop.training.models.MODELS."""
    data: str | None = None
    cache_dir: str | None = None
    subset: int | None = None
    test_subset: int | None = None
    threads: int | None = None
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/default"
    resume: str = "no"
    """'no': start a run (refused if `out` already holds one, unless `overwrite`); 'yes': continue the run in
    `out` (refused if it has no checkpoint); 'auto': continue it if it has a checkpoint, else start."""
    overwrite: bool = False
    stop_after_steps: int | None = None
    time_budget_s: float | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.essop, dict):      # from a checkpoint's options
            self.essop = EssopConfig.from_dict(self.essop)
        if not isinstance(self.essop, EssopConfig):
            raise TypeError(f"essop must be an EssopConfig, not {self.essop!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {self.mode!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, not {self.schedule!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(map(repr, SCALINGS))}, not {self.scaling!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, not {self.lr!r}")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be >= 0, not {self.warmup_epochs!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, not {self.weight_decay!r}")
        if isinstance(self.resume, bool):
            self.resume = "yes" if self.resume else "no"
        if self.resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {', '.join(map(repr, RESUME_MODES))}, not {self.resume!r}")
        if self.resume != "no" and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, not {self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {self.batch_size!r}")
        if self.model not in models.MODELS:
            raise ValueError(f"model must be one of {', '.join(models.MODELS)}, not {self.model!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r}: no CUDA device is available on this machine")


#: Options that only say where and how a run executes; every other option defines the run, and --resume
#: refuses a checkpoint whose defining options differ.
ENVIRONMENT_OPTIONS = ("data", "cache_dir", "threads", "device", "out", "resume", "overwrite", "stop_after_steps",
                       "time_budget_s", "progress")


def run_identity(options: dict) -> dict:
    """The options that define a run (a TrainOptions as a dict, as saved in checkpoints)."""
    d = {k: v for k, v in options.items() if k not in ENVIRONMENT_OPTIONS}
    if "blocks_per_stage" in d:     # checkpoints written before the model registry named ResNets by depth
        d["model"] = f"resnet{6 * d.pop('blocks_per_stage') + 2}"
    if isinstance(d.get("essop"), EssopConfig):
        d["essop"] = d["essop"].to_dict()
    elif isinstance(d.get("essop"), dict):
        # A checkpoint written before a field was added to EssopConfig lacks it: compare with its default.
        d["essop"] = EssopConfig.from_dict(d["essop"]).to_dict()
    return d


def lr_at(opts: TrainOptions, epoch: int, epochs: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate of one step.

    'step': lr, divided by 10 from epoch 0.5 * epochs on and again from 0.75 * epochs (so a 1-epoch run
    trains at lr, a 2-epoch run at lr then lr/10). 'cosine': linear warm-up from lr/steps to lr over
    warmup_epochs, then lr * (1 + cos(pi * progress)) / 2 with progress 0 -> 1 over the remaining steps."""
    if opts.schedule == "step":
        return opts.lr * (0.1 ** ((epoch >= 0.5 * epochs) + (epoch >= 0.75 * epochs)))
    total = epochs * steps_per_epoch
    done = epoch * steps_per_epoch + step
    warm = min(total, round(opts.warmup_epochs * steps_per_epoch))
    if done < warm:
        return opts.lr * (done + 1) / warm
    return opts.lr * 0.5 * (1.0 + math.cos(math.pi * (done - warm) / max(1, total - warm)))


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint written by train(), or ValueError naming the file when it is truncated or not one."""
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:      # torch reports a damaged file through several exception types
        raise ValueError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    needed = {"model", "optimizer", "epoch", "step", "epochs", "history", "stats", "wall_s", "options"}
    if not isinstance(ck, dict) or not needed <= set(ck):
        raise ValueError(f"{path} is not an essop train checkpoint (missing "
                         f"{', '.join(sorted(needed - set(ck) if isinstance(ck, dict) else needed))})")
    return ck


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class _EpochStats:
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    time_s: float = 0.0


class _StopFlag:
    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame):
        self.signum = signum


def evaluate(model, x: np.ndarray, y: np.ndarray, norm, device, batch: int = 500) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` in eval mode on images x with labels y."""
    loss, hits = evaluate_images(model, x, y, norm, device, batch)
    return loss, float(hits.mean()) if len(hits) else 0.0


def evaluate_images(model, x: np.ndarray, y: np.ndarray, norm, device, batch: int = 500) -> tuple[float, np.ndarray]:
    """(mean cross-entropy, bool [N]: which images `model` classifies correctly) in eval mode."""
    model.eval()
    loss, hits = 0.0, []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = norm(torch.from_numpy(x[i:i + batch]).to(device))
            yb = torch.from_numpy(y[i:i + batch]).to(device)
            out = model(xb)
            loss += float(F.cross_entropy(out, yb, reduction="sum"))
            hits.append((out.argmax(1) == yb).cpu().numpy())
    model.train()
    return loss / len(x), np.concatenate(hits) if hits else np.zeros(0, dtype=bool)


@dataclass
class RunData:
    """The images a run trains and is tested on: its training subset (uint8 HWC tensors on the run's device),
    its test subset (uint8 arrays) and the normalisation measured on its training subset."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: np.ndarray
    y_test: np.ndarray
    norm: cdata.Normaliser


def load_run_data(opts: TrainOptions, device) -> RunData:
    """The data of the run `opts` defines (its --subset, --test-subset and seed), as training and a later
    evaluation of its weights both need it."""
    ds = cdata.load_cifar10(opts.data, opts.cache_dir)
    tr = cdata.subset_indices(len(ds.x_train), opts.subset, seed=opts.seed)
    te = cdata.subset_indices(len(ds.x_test), opts.test_subset, seed=opts.seed)
    # On a GPU the training images live on it and are augmented there: the CPU then does not limit the step.
    return RunData(torch.from_numpy(ds.x_train[tr]).to(device), torch.from_numpy(ds.y_train[tr]).to(device),
                   ds.x_test[te], ds.y_test[te], cdata.Normaliser(ds.x_train[tr]))


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def build_model(opts: TrainOptions, device) -> torch.nn.Module:
    torch.manual_seed(opts.seed)
    model = models.build(opts.model).to(device)
    attach(model, EssopUpdate(opts.mode, opts.essop, opts.scaling))
    return model


def make_optimizer(model, opts: TrainOptions):
    return torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay,
                           nesterov=opts.nesterov)


def allreduce_fp32_grads(model, mode: str) -> None:
    """Sum the FP32 gradients over ranks; ESSOP weights already hold the summed counts' gradient."""
    skip = set()
    if mode != "fp32":
        skip = {id(mod.weight) for _, mod in essop_layers(model)}
    grads = [p.grad for p in model.parameters() if p.grad is not None and id(p) not in skip]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def train_step(model, opt, xb, yb, global_batch: int, mode: str) -> tuple[float, int]:
    opt.zero_grad(set_to_none=True)
    out = model(xb)
    loss = F.cross_entropy(out, yb, reduction="sum") / global_batch
    loss.backward()
    _, world = _rank_world()
    if world > 1:
        allreduce_fp32_grads(model, mode)
    opt.step()
    return float(loss.detach()) * global_batch, int((out.argmax(1) == yb).sum())


def train(opts: TrainOptions) -> dict:
    """Run (or resume) a training run; returns a summary dict."""
    return Trainer(opts).run()


class Trainer:
    """One training run: its folder, data, model, optimizer and progress (epoch, step, history), with the
    parts of a run as methods: `run` (epochs until done or stopped), `train_epoch`, `evaluate_epoch`,
    `checkpoint`, `finish`. Everything `--resume` needs is in `checkpoint`."""

    def __init__(self, opts: TrainOptions):
        self.opts = opts
        self.rank, self.world = _rank_world()
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = device = torch.device(opts.device)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.out = Path(opts.out)
        self.ckpt_path = self.out / "checkpoint.pt"
        existing = self._check_folder()
        self._load_data()
        if opts.batch_size % self.world:
            raise ValueError(f"batch_size {opts.batch_size} must divide evenly over {self.world} ranks")
        self.model = build_model(opts, device)
        self.opt = make_optimizer(self.model, opts)
        self.epochs, self.epoch, self.step = opts.epochs, 0, 0
        self.history, self.stats, self.wall_before = [], _EpochStats(), 0.0
        if opts.resume != "no" and self.ckpt_path.exists():
            self._restore(load_checkpoint(self.ckpt_path, device))
        if self.rank == 0:
            # Only now, with data, model and checkpoint read, does the run touch its folder: a run that fails
            # before this leaves nothing behind, and --overwrite removes the old run's files only here.
            self.out.mkdir(parents=True, exist_ok=True)
            if opts.overwrite:
                for f in existing:
                    (self.out / f).unlink()
            _atomic_text(json.dumps({"options": asdict(opts), "world_size": self.world, "torch": torch.__version__,
                                     "device": str(device)}, indent=2), self.out / "config.json")
        self.steps_per_epoch = math.ceil(len(self.x_train) / opts.batch_size)
        self.t_start = time.perf_counter()
        self.steps_run = 0
        self.stopped = None
        self.lr = lr_at(opts, self.epoch, self.epochs, self.step, self.steps_per_epoch)

    def _check_folder(self) -> list[str]:
        opts, out = self.opts, self.out
        existing = [f for f in RUN_FILES if (out / f).exists()]
        if opts.resume == "yes" and not self.ckpt_path.exists():
            raise FileNotFoundError(f"--resume: {out} holds no checkpoint.pt to continue "
                                    f"(--resume auto starts a fresh run there instead)")
        if opts.resume == "no" and existing and not opts.overwrite:
            raise FileExistsError(f"{out} already holds a run ({', '.join(existing)}); pass --resume to continue "
                                  f"it or --overwrite to replace it")
        return existing

    def _load_data(self) -> None:
        d = load_run_data(self.opts, self.device)
        self.x_train, self.y_train, self.x_test, self.y_test, self.norm = (d.x_train, d.y_train, d.x_test,
                                                                           d.y_test, d.norm)

    def _restore(self, ck: dict) -> None:
        saved, now = run_identity(ck["options"]), run_identity(asdict(self.opts))
        if saved != now:
            diff = ", ".join(f"{k}={saved.get(k)!r} (now {now.get(k)!r})" for k in sorted(set(saved) | set(now))
                             if saved.get(k) != now.get(k))
            raise ValueError(f"{self.ckpt_path} was written by a different run: {diff}")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.epoch, self.step, self.epochs = ck["epoch"], ck["step"], ck["epochs"]
        self.history, self.stats, self.wall_before = ck["history"], _EpochStats(**ck["stats"]), ck["wall_s"]
        torch.set_rng_state(ck["rng_torch"])
        np.random.set_state(ck["rng_numpy"])
        if self.device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu(), self.device)

    def run(self) -> dict:
        flag = _StopFlag()
        old = {s: signal.signal(s, flag) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.epoch < self.epochs and self.stopped is None:
                self.train_epoch(flag)
                if self.stopped is not None and self.step < self.steps_per_epoch:
                    self.checkpoint()          # stopped in the middle of an epoch: resume continues it
                    break
                self.evaluate_epoch()
                self.checkpoint()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return self.finish()

    def train_epoch(self, flag: "_StopFlag") -> None:
        """Steps from self.step to the end of the epoch, or until a signal or --stop-after-steps."""
        from tqdm import tqdm
        opts, epoch = self.opts, self.epoch
        order = cdata.epoch_order(len(self.x_train), opts.seed, epoch)
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, desc=f"{opts.mode} epoch {epoch + 1}/{self.epochs}",
                   disable=not opts.progress or self.rank != 0, leave=False, file=sys.stderr)
        t_ep = time.perf_counter()
        self.model.train()
        stats = self.stats
        while self.step < self.steps_per_epoch:
            step = self.step
            self.lr = lr_at(opts, epoch, self.epochs, step, self.steps_per_epoch)
            for g in self.opt.param_groups:
                g["lr"] = self.lr
            idx = order[step * opts.batch_size:(step + 1) * opts.batch_size].to(self.device)
            xb = cdata.augment(self.x_train[idx], cdata.step_generator(opts.seed, epoch, step))
            yb = self.y_train[idx]
            B = len(idx)
            lo, hi = (self.rank * B) // self.world, ((self.rank + 1) * B) // self.world
            loss_sum, correct = train_step(self.model, self.opt, self.norm(xb[lo:hi]), yb[lo:hi], B, opts.mode)
            if not math.isfinite(loss_sum):
                raise FloatingPointError(f"training loss became {loss_sum} at epoch {epoch}, step {step}")
            stats.loss_sum += loss_sum
            stats.correct += correct
            stats.seen += hi - lo
            self.step += 1
            self.steps_run += 1
            bar.update(1)
            bar.set_postfix(loss=f"{stats.loss_sum / max(1, stats.seen):.3f}",
                            acc=f"{stats.correct / max(1, stats.seen):.3f}")
            if flag.signum is not None:
                self.stopped = signal.Signals(flag.signum).name
            elif opts.stop_after_steps is not None and self.steps_run >= opts.stop_after_steps:
                self.stopped = "stop_after_steps"
            if self.stopped is not None:
                break
        bar.close()
        stats.time_s += time.perf_counter() - t_ep

    def evaluate_epoch(self) -> None:
        """Close a finished epoch: its statistics over all ranks, the test accuracy, the log row."""
        opts, stats = self.opts, self.stats
        if self.world > 1:
            t = torch.tensor([stats.loss_sum, stats.correct, stats.seen], dtype=torch.float64, device=self.device)
            dist.all_reduce(t)
            loss_sum, correct, seen = t.tolist()
        else:
            loss_sum, correct, seen = stats.loss_sum, stats.correct, stats.seen
        test_loss, test_acc = (evaluate(self.model, self.x_test, self.y_test, self.norm, self.device)
                               if self.rank == 0 else (0.0, 0.0))
        row = {"epoch": self.epoch + 1, "lr": lr_at(opts, self.epoch, self.epochs, 0, self.steps_per_epoch),
               "train_loss": loss_sum / seen, "train_acc": correct / seen, "test_loss": test_loss,
               "test_acc": test_acc, "epoch_time_s": stats.time_s,
               "wall_s": self.wall_before + time.perf_counter() - self.t_start, "steps": self.steps_per_epoch}
        self.history.append(row)
        self.epoch, self.step, self.stats = self.epoch + 1, 0, _EpochStats()
        self._apply_time_budget(row)
        if self.rank == 0:
            _write_logs(self.out, self.history)
            print(f"[{opts.mode}] epoch {row['epoch']}/{self.epochs} lr {self.lr:g} loss {row['train_loss']:.4f} "
                  f"train {row['train_acc']:.4f} test {test_acc:.4f} ({row['epoch_time_s']:.1f} s)",
                  file=sys.stderr, flush=True)

    def _apply_time_budget(self, row: dict) -> None:
        budget = self.opts.time_budget_s
        if budget is None:
            return
        if self.epoch == 1 and len(self.history) == 1:
            # Size the run from the first epoch's cost so that the whole run fits the budget.
            self.epochs = max(1, min(self.opts.epochs, int(budget // max(row["wall_s"], 1e-9))))
        elif self.epoch < self.epochs and row["wall_s"] + row["wall_s"] / len(self.history) > budget:
            self.stopped = "time_budget"

    def checkpoint(self) -> None:
        if self.rank != 0:
            return
        dev = self.device
        _atomic_save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "epoch": self.epoch,
                      "step": self.step, "epochs": self.epochs, "history": self.history,
                      "stats": asdict(self.stats), "wall_s": self.wall_before + time.perf_counter() - self.t_start,
                      "options": asdict(self.opts), "rng_torch": torch.get_rng_state(),
                      "rng_numpy": np.random.get_state(),
                      "rng_cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}, self.ckpt_path)

    def finish(self) -> dict:
        summary = {"epochs_done": self.epoch, "epochs": self.epochs, "step": self.step, "stopped": self.stopped,
                   "final": self.history[-1] if self.history else None, "out": str(self.out)}
        if self.rank == 0:
            if self.epoch >= self.epochs and self.history:
                torch.save(self.model.state_dict(), self.out / "model.pt")
                plot_curves([(self.opts.mode, self.history)], self.out / "curves.png")
            _atomic_text(json.dumps(summary, indent=2), self.out / "summary.json")
        return summary


def _write_logs(out: Path, history: list[dict]) -> None:
    _atomic_text(json.dumps(history, indent=2), out / "log.json")
    tmp = out / f"log.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        for row in history:
            w.writerow({k: row[k] for k in LOG_FIELDS})
    os.replace(tmp, out / "log.csv")


def plot_curves(runs: list[tuple[str, list[dict]]], path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, hist in runs:
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["train_loss"] for r in hist], label=label)
        axes[1].plot(ep, [100 * r["test_acc"] for r in hist], label=label)
    axes[0].set(xlabel="epoch", ylabel="train loss")
    axes[1].set(xlabel="epoch", ylabel="test accuracy (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)

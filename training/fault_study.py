"""`essop faults`: what bit flips at a given rate do to ESSOP weight gradients and to training, against the
same rate of flips in the bits of FP32 gradient words (docs/reliability.md).

For every rate r:
- fidelity: one FP32 forward/backward pass of a network records each layer's pairs (fidelity.record_pairs);
  each layer's ESSOP gradient is formed with faults at rate r (training.faults: inputs, LFSR states,
  comparators, counters) and the FP32 gradient gets its words' bits flipped at rate r; both are compared with
  the clean FP32 gradient by cosine, per layer (a non-finite gradient has no cosine: it counts as such);
- training: a short run (a subset of CIFAR-10, a few epochs, the same seed and data order for every run) of
  the network with ESSOP weight updates under faults at rate r, and of the FP32 network whose weight
  gradients suffer flips at rate r; the test accuracy after the last epoch, or "diverged" when the loss
  became NaN or Inf.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from essop.config import EssopConfig
from essop.plotting import pyplot, save_figure
from essop.training import data as cdata, models
from essop.training.faults import FaultSpec, attach_fp32_faults, flip_fp32_bits
from essop.training.fidelity import record_pairs
from essop.training.layers import EssopConv2d, EssopUpdate, _ConvGeometry, attach, essop_weight_grad

__all__ = ["StudyOptions", "fidelity_rows", "training_rows", "markdown", "plot"]

ARITHMETICS = ("essop", "fp32")


@dataclass(frozen=True)
class StudyOptions:
    rates: tuple[float, ...] = (0.0, 1e-6, 1e-5, 1e-4)
    sites: tuple[str, ...] = ("inputs", "lfsr", "comparators", "counters")
    model: str = "resnet8"
    cfg: EssopConfig = EssopConfig()
    batch_size: int = 64
    subset: int = 1000
    test_subset: int = 500
    epochs: int = 3
    lr: float = 0.05
    seed: int = 0
    data: str | None = None
    cache_dir: str | None = None


def _batch(ds, norm, opts: StudyOptions, epoch: int, step: int, order) -> tuple[torch.Tensor, torch.Tensor]:
    idx = order[step * opts.batch_size:(step + 1) * opts.batch_size].numpy()
    x = cdata.augment(torch.from_numpy(ds.x_train[idx]), cdata.step_generator(opts.seed, epoch, step))
    return norm(x), torch.from_numpy(ds.y_train[idx])


def _cosine(g: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(g).all():
        return math.nan
    return float(F.cosine_similarity(g.flatten().double(), ref.flatten().double(), dim=0))


def fidelity_rows(opts: StudyOptions, progress=None) -> list[dict]:
    """Per rate, arithmetic and layer: the cosine of the faulty gradient with the clean FP32 one (NaN when the
    faulty gradient is not finite), on the first minibatch of the seed's order, network at initialisation."""
    torch.manual_seed(opts.seed)
    model = models.build(opts.model)
    model.train()
    ds = cdata.load_cifar10(opts.data, opts.cache_dir)
    norm = cdata.Normaliser(ds.x_train)
    order = torch.from_numpy(cdata.subset_indices(len(ds.x_train), opts.subset, opts.seed))
    order = order[cdata.epoch_order(len(order), opts.seed, 0)]
    x, y = _batch(ds, norm, opts, 0, 0, order)
    recorded = record_pairs(model, x, y)
    rows = []
    for rate in opts.rates:
        spec = FaultSpec(rate, tuple(opts.sites), opts.seed)
        for name, layer, xin, dout, g32 in recorded:
            layer.essop_update = EssopUpdate("essop", opts.cfg, "per_pair", faults=spec if rate > 0 else None)
            layer.essop_pairs.zero_()
            geom = _ConvGeometry(layer, xin.shape, dout.shape) if isinstance(layer, EssopConv2d) else None
            g = essop_weight_grad(layer, xin, dout, geom)
            rows.append({"rate": rate, "arithmetic": "essop", "layer": name, "cosine": _cosine(g, g32)})
            flipped = flip_fp32_bits(g32.float(), rate, np.random.default_rng([opts.seed, len(rows)]))
            rows.append({"rate": rate, "arithmetic": "fp32", "layer": name, "cosine": _cosine(flipped, g32)})
        if progress:
            progress(f"fidelity at rate {rate:g}")
    return rows


def training_rows(opts: StudyOptions, progress=None) -> list[dict]:
    """Per rate and arithmetic, one short training run: test accuracy and loss after each epoch."""
    ds = cdata.load_cifar10(opts.data, opts.cache_dir)
    norm = cdata.Normaliser(ds.x_train)
    subset = torch.from_numpy(cdata.subset_indices(len(ds.x_train), opts.subset, opts.seed))
    test = cdata.subset_indices(len(ds.x_test), opts.test_subset, opts.seed)
    x_test, y_test = ds.x_test[test], ds.y_test[test]
    steps = len(subset) // opts.batch_size
    rows = []
    for arithmetic in ARITHMETICS:
        for rate in opts.rates:
            torch.manual_seed(opts.seed)
            model = models.build(opts.model)
            spec = FaultSpec(rate, tuple(opts.sites), opts.seed) if rate > 0 else None
            if arithmetic == "essop":
                attach(model, EssopUpdate("essop", opts.cfg, "per_pair", faults=spec))
            elif spec is not None:
                attach_fp32_faults(model, spec)
            opt = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9, weight_decay=5e-4)
            total = opts.epochs * steps
            t0 = time.perf_counter()
            diverged = False
            for epoch in range(opts.epochs):
                order = subset[cdata.epoch_order(len(subset), opts.seed, epoch)]
                loss_sum = 0.0
                for step in range(steps):
                    k = epoch * steps + step
                    for group in opt.param_groups:
                        group["lr"] = 0.5 * opts.lr * (1 + math.cos(math.pi * k / total))
                    xb, yb = _batch(ds, norm, opts, epoch, step, order)
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(xb), yb)
                    loss.backward()
                    if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
                        diverged = True     # a NaN or Inf gradient: the run cannot go on
                        break
                    opt.step()
                    loss_sum += float(loss.detach())
                if diverged or not math.isfinite(loss_sum):
                    diverged = True
                    break
                from essop.training.train import evaluate
                test_loss, acc = evaluate(model, x_test, y_test, norm, "cpu")
                if not math.isfinite(test_loss):
                    diverged = True
                    break
                rows.append({"arithmetic": arithmetic, "rate": rate, "epoch": epoch + 1, "train_loss":
                             loss_sum / steps, "test_loss": test_loss, "test_acc": acc, "diverged": False,
                             "seconds": time.perf_counter() - t0})
            if diverged:
                rows.append({"arithmetic": arithmetic, "rate": rate, "epoch": epoch + 1, "train_loss": math.nan,
                             "test_loss": math.nan, "test_acc": math.nan, "diverged": True,
                             "seconds": time.perf_counter() - t0})
            if progress:
                last = rows[-1]
                progress(f"training {arithmetic} at rate {rate:g}: "
                         + ("diverged" if last["diverged"] else f"test accuracy {last['test_acc']:.3f}")
                         + f" ({last['seconds']:.0f} s)")
    return rows


def _final(train_rows: list[dict], arithmetic: str, rate: float) -> dict:
    return [r for r in train_rows if r["arithmetic"] == arithmetic and r["rate"] == rate][-1]


def markdown(opts: StudyOptions, fid: list[dict], train_rows: list[dict]) -> str:
    lines = ["| bit-flip rate | ESSOP median layer cosine | ESSOP min | ESSOP non-finite layers | FP32 median "
             "layer cosine | FP32 min | FP32 non-finite layers | ESSOP test accuracy | FP32 test accuracy |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rate in opts.rates:
        cells = [f"{rate:g}"]
        for arithmetic in ARITHMETICS:
            cos = [r["cosine"] for r in fid if r["rate"] == rate and r["arithmetic"] == arithmetic]
            finite = [c for c in cos if not math.isnan(c)]
            cells += [f"{statistics.median(finite):.3f}" if finite else "-",
                      f"{min(finite):.3f}" if finite else "-", f"{len(cos) - len(finite)}/{len(cos)}"]
        for arithmetic in ARITHMETICS:
            if train_rows:
                r = _final(train_rows, arithmetic, rate)
                cells.append("diverged" if r["diverged"] else f"{100 * r['test_acc']:.1f} %")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(opts: StudyOptions, fid: list[dict], train_rows: list[dict], path: Path) -> None:
    plt = pyplot()

    floor = min(r for r in opts.rates if r > 0) / 10 if any(r > 0 for r in opts.rates) else 1e-9
    xs = [r if r > 0 else floor for r in opts.rates]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for arithmetic, style in zip(ARITHMETICS, ("o-", "s--")):
        med = []
        for rate in opts.rates:
            cos = [r["cosine"] for r in fid if r["rate"] == rate and r["arithmetic"] == arithmetic]
            finite = [c for c in cos if not math.isnan(c)]
            # a non-finite layer gradient is plotted as cosine 0 (no direction left)
            med.append(statistics.median(finite + [0.0] * (len(cos) - len(finite))) if cos else math.nan)
        ax1.plot(xs, med, style, label=arithmetic.upper())
        if train_rows:
            acc = []
            for rate in opts.rates:
                r = _final(train_rows, arithmetic, rate)
                acc.append(10.0 if r["diverged"] else 100 * r["test_acc"])
            ax2.plot(xs, acc, style, label=arithmetic.upper() + " (diverged: plotted at 10 %)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_xlabel(f"bit-flip rate per bit and opportunity (0 plotted at {floor:g})")
    ax1.set(ylabel="median layer cosine with clean FP32 gradient", ylim=(-0.05, 1.02),
            title=f"{opts.model}: gradient fidelity under faults")
    ax2.set(ylabel="test accuracy (%)", title=f"{opts.model}: {opts.epochs} epochs on {opts.subset} images")
    fig.tight_layout()
    save_figure(fig, path)

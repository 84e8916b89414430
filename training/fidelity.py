"""`essop fidelity`: how close is each ESSOP weight gradient to the FP32 one, layer by layer?

For one or more minibatches of a network on CIFAR-10 (at initialisation, or from `--checkpoint`), one FP32
forward and backward pass records every ESSOP layer's input and output gradient; then, for every requested
configuration (mode x BL x scaling x sharing x random-number source), every layer's weight gradient is formed
from those same pairs
(layers.essop_weight_grad, the function training uses) and compared with autograd's FP32 gradient:

- cosine: <g, g_fp32> / (|g| |g_fp32|);
- rel_err: |g - g_fp32| / |g_fp32|;
- quant_share: the share of the squared error that quantisation alone explains,
  |g_exp - g_fp32|^2 / (|g_exp - g_fp32|^2 + |g - g_exp|^2), where g_exp is the expected mode's gradient with
  the same scaling (the exact expectation of the counts): 1 for the expected mode itself, near 0 when
  bitstream noise dominates;
- zero_frac: the fraction of nonzero FP32 elements of the layer's pairs (x and delta together, every im2col
  pair counted) whose q-bit magnitude is 0 under the configuration's exponents;
- saturated: whether any magnitude was clamped to 2**q - 1 (never, with exponents taken from the data).

`essop fidelity` (its options and output files: essop.app.training_commands) writes fidelity.csv (one row per
configuration, minibatch and layer), fidelity.md (per configuration the median and minimum over layers, then
the per-layer cosines, `markdown`) and fidelity.png (cosine per layer, one line per configuration, `plot`).
Numbers of docs/fidelity.md: `essop fidelity` (the default grid).
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from essop.config import EssopConfig, rng_label
from essop.plotting import pyplot, save_figure
from essop.training import fp16_tensors
from essop.training.layers import (EssopConv2d, EssopUpdate, _ConvGeometry, _group_exponents, _map_pairs,
                                         _prescale, essop_layers, essop_weight_grad)

__all__ = ["Point", "grid", "record_pairs", "measure", "markdown", "plot", "FIELDS"]

FIELDS = ("config", "mode", "scaling", "sharing", "rng", "bl", "batch", "layer", "cosine", "rel_err", "quant_share",
          "zero_frac", "saturated")


@dataclass(frozen=True)
class Point:
    mode: str
    scaling: str
    sharing: str
    bl: int
    rng: str = "lfsr"

    @property
    def label(self) -> str:
        if self.mode == "expected":
            return f"expected {self.scaling}"
        return f"essop {self.scaling} {self.sharing} BL {self.bl}" + ("" if self.rng == "lfsr" else f" {self.rng}")


def grid(modes, bls, scalings, sharings, rngs=("lfsr",)) -> list[Point]:
    """Every requested configuration; the expected mode once per scaling (it has no BL, sharing or random
    numbers)."""
    points = []
    for scaling in scalings:
        if "expected" in modes:
            points.append(Point("expected", scaling, "shared", bls[0]))
        if "essop" in modes:
            points += [Point("essop", scaling, sh, bl, rng)
                       for rng, sh, bl in itertools.product(rngs, sharings, bls)]
    return points


def record_pairs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One FP32 forward/backward pass: per ESSOP layer (name, layer, input, output gradient, FP32 weight
    gradient as [Cout, n])."""
    store = {}

    def keep_input(name):
        def hook(mod, inputs, output):
            store[name] = [inputs[0].detach()]
            output.register_hook(lambda g: store[name].append(g.detach()))
        return hook

    layers = essop_layers(model)
    handles = [mod.register_forward_hook(keep_input(name)) for name, mod in layers]
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return [(name, mod, store[name][0], store[name][1], mod.weight.grad.detach().reshape(mod.weight.shape[0], -1))
            for name, mod in layers]


def _zero_fraction(layer, cfg: EssopConfig, scaling: str, x: torch.Tensor, d: torch.Tensor) -> tuple[float, bool]:
    """Share of the nonzero elements of the layer's pairs that become magnitude 0, and saturation."""
    update = EssopUpdate("expected", cfg, scaling)
    sx = _prescale(float(x.abs().max()))
    sd = _prescale(float(d.abs().max()))
    if isinstance(layer, EssopConv2d):
        xp = _ConvGeometry(layer, x.shape, d.shape).pairs(x, sx, "torch")
    else:
        xp = _map_pairs(x, sx, "torch")
    dp = _map_pairs(d, sd, "torch")
    B = d.shape[0]
    block = torch.stack([fp16_tensors.fp16_patterns(x.abs().max().reshape(1), sx)[0],
                         fp16_tensors.fp16_patterns(d.abs().max().reshape(1), sd)[0]])
    zeros = nonzero = 0
    saturated = False
    for pairs, top in ((xp, block[0]), (dp, block[1])):
        exp = _group_exponents(update.scaling, pairs.vmax16, B, top)
        for c0 in range(0, exp.numel(), 8192):
            idx = torch.arange(c0, min(exp.numel(), c0 + 8192))
            bits = pairs.rows(idx)
            a, _, _, sat = fp16_tensors.magnitudes(bits, exp[idx, None], cfg.q)
            live = (bits & 0x7FFF) != 0
            zeros += int((live & (a == 0)).sum())
            nonzero += int(live.sum())
            saturated |= bool(sat.any())
    return zeros / max(1, nonzero), saturated


def measure(model, batches, points: list[Point], base: EssopConfig, progress=None) -> list[dict]:
    rows = []
    for b, (x, y) in enumerate(batches):
        recorded = record_pairs(model, x, y)
        for point in points:
            cfg = base.replace(bl=point.bl, sharing=point.sharing, rng=point.rng)
            for name, layer, xin, dout, g32 in recorded:
                def grad(mode):
                    layer.essop_update = EssopUpdate(mode, cfg, point.scaling)
                    layer.essop_pairs.zero_()
                    geom = _ConvGeometry(layer, xin.shape, dout.shape) if isinstance(layer, EssopConv2d) else None
                    return essop_weight_grad(layer, xin, dout, geom).to(torch.float64)
                g = grad(point.mode)
                g_exp = g if point.mode == "expected" else grad("expected")
                ref = g32.to(torch.float64)
                err_q = float((g_exp - ref).square().sum())
                err_n = float((g - g_exp).square().sum())
                zero_frac, saturated = _zero_fraction(layer, cfg, point.scaling, xin, dout)
                rows.append({"config": point.label, "mode": point.mode, "scaling": point.scaling,
                             "sharing": point.sharing if point.mode == "essop" else "-",
                             "rng": rng_label(point.rng, cfg.rng_shift) if point.mode == "essop" else "-",
                             "bl": point.bl if point.mode == "essop" else "-", "batch": b, "layer": name,
                             "cosine": float(F.cosine_similarity(g.flatten(), ref.flatten(), dim=0)),
                             "rel_err": float((g - ref).norm() / ref.norm()),
                             "quant_share": err_q / (err_q + err_n) if err_q + err_n > 0 else 1.0,
                             "zero_frac": zero_frac, "saturated": saturated})
            if progress:
                progress(point, b)
    for _, layer in essop_layers(model):
        layer.essop_update = None
    return rows


def markdown(rows: list[dict], title: str) -> str:
    configs = list(dict.fromkeys(r["config"] for r in rows))
    lines = [title, "", "| configuration | median cosine | min cosine | median rel. error | median quant. share "
             "| median zero fraction | saturated |", "|---|---|---|---|---|---|---|"]
    for c in configs:
        rs = [r for r in rows if r["config"] == c]
        cos = [r["cosine"] for r in rs]
        lines.append(f"| {c} | {statistics.median(cos):.3f} | {min(cos):.3f} | "
                     f"{statistics.median(r['rel_err'] for r in rs):.3f} | "
                     f"{statistics.median(r['quant_share'] for r in rs):.2f} | "
                     f"{statistics.median(r['zero_frac'] for r in rs):.3f} | {any(r['saturated'] for r in rs)} |")
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    lines += ["", "Cosine per layer (first minibatch):", "",
              "| layer | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
    for name in layers:
        vals = [next(r["cosine"] for r in rows if r["config"] == c and r["layer"] == name and r["batch"] == 0)
                for c in configs]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    plt = pyplot()

    configs = list(dict.fromkeys(r["config"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for c in configs:
        ys = [statistics.mean(r["cosine"] for r in rows if r["config"] == c and r["layer"] == name)
              for name in layers]
        ax.plot(range(len(layers)), ys, marker=".", label=c,
                linestyle="--" if c.startswith("expected") else "-")
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
    ax.set(ylabel="cosine with the FP32 gradient", title=title, ylim=(min(0.0, ax.get_ylim()[0]), 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)

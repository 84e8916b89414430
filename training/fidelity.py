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
- saturated: whether any magnitude was clamped to 2**q - 1 (never, with exponents taken from the data);
- out_cosine, out_rel_err: the same two comparisons in the layer's output space, between conv(x, g) and
  conv(x, g_fp32) over the minibatch's own inputs x (a linear layer: x g^T): how the update moves what the layer
  computes on these images. An error spread evenly over the weights mostly falls where the data are not and
  moves the outputs little; one that follows the data (the same random numbers for every pair make a pair's
  bits a threshold of its magnitudes) moves them more than its weight-space size says.

`essop fidelity` (its options and output files: essop.app.training_commands) writes fidelity.csv (one row per
configuration, minibatch and layer), fidelity.md (per configuration the median and minimum over layers, then
the per-layer cosines, `markdown`) and fidelity.png (cosine per layer, one line per configuration, `plot`).
Numbers of docs/fidelity.md: `essop fidelity` (the default grid) and `essop fidelity --protocol
protocols/accuracy-cpu.json` (`protocol_points`: the configurations of an accuracy campaign's rows).

`essop fidelity --steps K` (`measure_accumulated`) compares instead the sum of K consecutive minibatches' updates
with the sum of their FP32 gradients, random numbers running on as in training: an error that is the same every
step stays in the sum, noise averages out (accumulated.csv/.md/.png).
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from essop.config import EssopConfig, rng_label
from essop.golden.statistics import below_counts, joint_histogram
from essop.plotting import pyplot, save_figure
from essop.training import fp16_tensors
from essop.training.layers import (EssopConv2d, EssopUpdate, _ConvGeometry, _group_exponents, _map_pairs,
                                         _prescale, essop_layers, essop_weight_grad)

__all__ = ["Point", "config_label", "grid", "protocol_points", "record_pairs", "measure", "measure_accumulated",
           "step_counts", "fixed_bias_share", "markdown", "markdown_accumulated", "plot", "plot_accumulated", "FIELDS",
           "ACCUMULATED_FIELDS"]

FIELDS = ("config", "mode", "scaling", "sharing", "rng", "bl", "batch", "layer", "cosine", "rel_err", "quant_share",
          "zero_frac", "saturated", "out_cosine", "out_rel_err")


@dataclass(frozen=True)
class Point:
    mode: str
    scaling: str
    sharing: str
    bl: int
    rng: str = "lfsr"
    rng_shift: bool = False
    element_words: bool = False

    @property
    def label(self) -> str:
        return config_label(self.mode, self.scaling, self.sharing, self.bl,
                            rng_label(self.rng, self.rng_shift, self.element_words))

    def config(self, base: EssopConfig) -> EssopConfig:
        """`base` with this point's BL, sharing and random-number source."""
        return base.replace(bl=self.bl, sharing=self.sharing, rng=self.rng, rng_shift=self.rng_shift,
                            element_words=self.element_words)

    def fields(self, cfg: EssopConfig) -> dict:
        """The columns of a table row that name this point (the expected mode has no BL, sharing or source)."""
        essop = self.mode == "essop"
        return {"config": self.label, "mode": self.mode, "scaling": self.scaling,
                "sharing": self.sharing if essop else "-", "rng": cfg.rng_label if essop else "-",
                "bl": self.bl if essop else "-"}


def config_label(mode: str, scaling: str, sharing: str, bl: int, source: str) -> str:
    """How fidelity tables name a configuration (`source` as config.rng_label names it)."""
    if mode == "expected":
        return f"expected {scaling}"
    # The plain LFSR is the array's default and goes unnamed (docs/fidelity.md's rows read that way).
    return f"essop {scaling} {sharing} BL {bl}" + ("" if source == "lfsr" else f" {source}")


def grid(modes, bls, scalings, sharings, rngs=("lfsr",), rng_shift: bool = False,
         element_words: bool = False) -> list[Point]:
    """Every requested configuration; the expected mode once per scaling (it has no BL, sharing or random
    numbers). With `element_words`, every LFSR per_element point is followed by its element-words twin."""
    points = []
    for scaling in scalings:
        if "expected" in modes:
            points.append(Point("expected", scaling, "shared", bls[0]))
        if "essop" in modes:
            for rng, sh, bl in itertools.product(rngs, sharings, bls):
                points.append(Point("essop", scaling, sh, bl, rng, rng_shift))
                if element_words and rng == "lfsr" and sh == "per_element":
                    points.append(Point("essop", scaling, sh, bl, rng, rng_shift, True))
    return points


def protocol_points(rows, base: EssopConfig) -> list[Point]:
    """The configurations of an accuracy protocol's rows, each once, in the rows' order: `rows` holds
    (row name, mode, scaling, EssopConfig) per row, as `essop train` reads the row. FP32 rows have no ESSOP
    gradient; seeds and schedules are training's, not the gradient's. A row whose array differs from `base` in
    more than BL, sharing and random-number source (another q, say) is refused: one table, one array."""
    points = []
    for name, mode, scaling, cfg in rows:
        if mode == "fp32":
            continue
        point = (Point("expected", scaling, "shared", base.bl) if mode == "expected" else
                 Point("essop", scaling, cfg.sharing, cfg.bl, cfg.rng, cfg.rng_shift, cfg.element_words))
        if mode == "essop":
            own = point.config(base)
            if own != cfg:
                theirs, ours = asdict(cfg), asdict(own)
                diff = ", ".join(f"{k}={v!r}" for k, v in theirs.items() if ours[k] != v)
                raise ValueError(f"row {name!r} sets {diff}, which this fidelity command's array does not "
                                 f"(give it the same options)")
        if point not in points:
            points.append(point)
    if not points:
        raise ValueError("the protocol has no ESSOP or expected row: nothing to measure")
    return points


def record_pairs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One FP32 forward/backward pass: per ESSOP layer (name, layer, input, output gradient, FP32 weight
    gradient as [Cout, n]). The layers' updates are detached for the pass (and put back): a layer that still
    holds an ESSOP update from an earlier measurement would give its ESSOP gradient as the FP32 one."""
    store = {}

    def keep_input(name):
        def hook(mod, inputs, output):
            store[name] = [inputs[0].detach()]
            output.register_hook(lambda g: store[name].append(g.detach()))
        return hook

    layers = essop_layers(model)
    updates = [mod.essop_update for _, mod in layers]
    handles = [mod.register_forward_hook(keep_input(name)) for name, mod in layers]
    model.zero_grad(set_to_none=True)
    try:
        for _, mod in layers:
            mod.essop_update = None
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
        for (_, mod), update in zip(layers, updates):
            mod.essop_update = update
    return [(name, mod, store[name][0], store[name][1], mod.weight.grad.detach().reshape(mod.weight.shape[0], -1))
            for name, mod in layers]


def _layer_pairs(layer, cfg: EssopConfig, scaling: str, x: torch.Tensor, d: torch.Tensor):
    """The layer's x and delta pairs as the kernels read them (prescaled FP16 patterns) and every pair's group
    exponent under `scaling`: [(x pairs, x exponents), (delta pairs, delta exponents)]."""
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
    scaling = EssopUpdate("expected", cfg, scaling).scaling
    return [(pairs, _group_exponents(scaling, pairs.vmax16, B, top)) for pairs, top in ((xp, block[0]),
                                                                                        (dp, block[1]))]


def _zero_fraction(layer, cfg: EssopConfig, scaling: str, x: torch.Tensor, d: torch.Tensor) -> tuple[float, bool]:
    """Share of the nonzero elements of the layer's pairs that become magnitude 0, and saturation."""
    zeros = nonzero = 0
    saturated = False
    for pairs, exp in _layer_pairs(layer, cfg, scaling, x, d):
        for c0 in range(0, exp.numel(), 8192):
            idx = torch.arange(c0, min(exp.numel(), c0 + 8192))
            bits = pairs.rows(idx)
            a, _, _, sat = fp16_tensors.magnitudes(bits, exp[idx, None], cfg.q)
            live = (bits & 0x7FFF) != 0
            zeros += int((live & (a == 0)).sum())
            nonzero += int(live.sum())
            saturated |= bool(sat.any())
    return zeros / max(1, nonzero), saturated


def fixed_bias_share(model, x: torch.Tensor, y: torch.Tensor, cfg: EssopConfig, scaling: str = "per_pair",
                     chunk: int = 1024) -> list[dict]:
    """How large the random-number source's fixed-input bias is in each layer's weight gradient, exactly.

    golden.statistics.joint_histogram gives F(a, b), the long-run mean of C / BL for fixed magnitudes over the
    source's whole joint period (shared sharing: the array's one x and one delta generator). For one FP32
    forward/backward pass on (x, y), per ESSOP layer: G_exp = sum_p 2**(E_x + E_d) sign * a b (the expected
    mode's gradient, up to its constant scale) and G_bias = sum_p 2**(E_x + E_d) sign * (2**(2q) F(a, b) - a b),
    the part of the long-run mean gradient that is not the product. Rows: layer, pairs, rel_bias =
    |G_bias| / |G_exp| and cos_bias = cos(G_bias, G_exp) (-1: a pure shrinkage of the gradient). The variance,
    which averages out over steps, is not in it (see `measure`)."""
    if cfg.sharing != "shared":
        raise ValueError(f"fixed_bias_share needs sharing='shared' (one generator pair for every product), "
                         f"not {cfg.sharing!r}")
    Q = 1 << cfg.q
    hist, total = joint_histogram(cfg, 0, 0)
    count = below_counts(hist, cfg.q)                                                       # [b, a]
    table = torch.tensor(count / total * (Q * Q) - np.outer(np.arange(Q), np.arange(Q)), dtype=torch.float64)
    rows = []
    for name, layer, xin, dout, _ in record_pairs(model, x, y):
        g_exp, g_bias, pairs = _bias_gradients(layer, cfg, scaling, xin, dout, table, chunk)
        norm = float(g_exp.norm())
        rows.append({"layer": name, "pairs": pairs,
                     "rel_bias": float(g_bias.norm()) / norm if norm else 0.0,
                     "cos_bias": float(F.cosine_similarity(g_bias.flatten(), g_exp.flatten(), dim=0))})
    return rows


def _bias_gradients(layer, cfg: EssopConfig, scaling: str, x: torch.Tensor, d: torch.Tensor, table: torch.Tensor,
                    chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(G_exp, G_bias, pairs) of fixed_bias_share for one layer: float64 [Cout, n], both on the same relative
    scale; table[b, a] = 2**(2q) F(a, b) - a b."""
    (xp, ex), (dp, ed) = _layer_pairs(layer, cfg, scaling, x, d)
    e = (ex + ed).to(torch.float64)
    g_exp = torch.zeros(dp.length, xp.length, dtype=torch.float64)
    g_bias = torch.zeros_like(g_exp)
    for c0 in range(0, ex.numel(), chunk):
        i = torch.arange(c0, min(ex.numel(), c0 + chunk))
        a, s_a, _, _ = fp16_tensors.magnitudes(xp.rows(i), ex[i, None], cfg.q)
        b, s_b, _, _ = fp16_tensors.magnitudes(dp.rows(i), ed[i, None], cfg.q)
        sign = (1.0 - 2.0 * s_b.to(torch.float64))[:, :, None] * (1.0 - 2.0 * s_a.to(torch.float64))[:, None, :]
        weight = torch.pow(2.0, e[i] - e.max())[:, None, None]       # the pairs' relative scales
        g_exp += (weight * sign * (b[:, :, None] * a[:, None, :]).to(torch.float64)).sum(0)
        g_bias += (weight * sign * table[b.long()[:, :, None], a.long()[:, None, :]]).sum(0)
    return g_exp, g_bias, ex.numel()


def _layer_output(layer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The layer's output on its minibatch input `x` with weights `w` ([Cout, n], float64), no bias: how a
    weight change of `w` moves what the layer computes on these images."""
    x = x.to(torch.float64)
    if isinstance(layer, EssopConv2d):
        return F.conv2d(x, w.reshape(layer.weight.shape), None, layer.stride, layer.padding, layer.dilation,
                        layer.groups)
    return F.linear(x, w)


def _layer_grad(layer, mode: str, cfg: EssopConfig, scaling: str, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The layer's weight gradient from its pairs (x, d) in `mode`, as training forms it (float64 [Cout, n]),
    its random numbers starting at the layer's `essop_pairs` counter, which it advances."""
    layer.essop_update = EssopUpdate(mode, cfg, scaling)
    geom = _ConvGeometry(layer, x.shape, d.shape) if isinstance(layer, EssopConv2d) else None
    return essop_weight_grad(layer, x, d, geom).to(torch.float64)


def _comparison(layer, x: torch.Tensor, g: torch.Tensor, ref: torch.Tensor) -> dict:
    """cosine and rel_err of g against ref, and the same in the layer's output space over inputs x."""
    out, out_ref = _layer_output(layer, x, g), _layer_output(layer, x, ref)
    return {"cosine": float(F.cosine_similarity(g.flatten(), ref.flatten(), dim=0)),
            "rel_err": float((g - ref).norm() / ref.norm()),
            "out_cosine": float(F.cosine_similarity(out.flatten(), out_ref.flatten(), dim=0)),
            "out_rel_err": float((out - out_ref).norm() / out_ref.norm())}


def measure(model, batches, points: list[Point], base: EssopConfig, progress=None) -> list[dict]:
    rows = []
    for b, (x, y) in enumerate(batches):
        recorded = record_pairs(model, x, y)
        for point in points:
            cfg = point.config(base)
            for name, layer, xin, dout, g32 in recorded:
                def grad(mode):
                    layer.essop_pairs.zero_()
                    return _layer_grad(layer, mode, cfg, point.scaling, xin, dout)
                g = grad(point.mode)
                g_exp = g if point.mode == "expected" else grad("expected")
                ref = g32.to(torch.float64)
                err_q = float((g_exp - ref).square().sum())
                err_n = float((g - g_exp).square().sum())
                zero_frac, saturated = _zero_fraction(layer, cfg, point.scaling, xin, dout)
                row = {**point.fields(cfg), "batch": b, "layer": name, **_comparison(layer, xin, g, ref),
                       "quant_share": err_q / (err_q + err_n) if err_q + err_n > 0 else 1.0,
                       "zero_frac": zero_frac, "saturated": saturated}
                rows.append({k: row[k] for k in FIELDS})
            if progress:
                progress(point, b)
    for _, layer in essop_layers(model):
        layer.essop_update = None
    return rows


ACCUMULATED_FIELDS = ("config", "mode", "scaling", "sharing", "rng", "bl", "steps", "layer", "cosine", "rel_err",
                      "out_cosine", "out_rel_err")


def step_counts(steps: int) -> list[int]:
    """The step counts at which `measure_accumulated` compares the sums: 1, 2, 4, ... and `steps` itself."""
    counts = [1 << i for i in range(steps.bit_length()) if 1 << i < steps]
    return counts + [steps]


def measure_accumulated(model, batches, points: list[Point], base: EssopConfig, progress=None) -> list[dict]:
    """Where one step's error goes after many: the updates of the consecutive minibatches `batches` summed,
    against the sum of their FP32 gradients, layer by layer.

    The weights stay as they are (what accumulates is the update's error, not the network's response to it)
    and every layer's random numbers run on from one minibatch to the next exactly as in training (the layer's
    `essop_pairs` counter, one per configuration, from 0). Noise that is independent from step to step grows
    as the square root of the steps, the gradients' common part and any error that is the same every step (a
    source's fixed-input bias, a quantiser's rounding) as the steps: a one-step proxy (`measure`) ranks
    sources of equal bias, the sum over enough steps ranks them all. Rows at every count of `step_counts`:
    cosine and rel_err of the summed update in weight space, out_cosine and out_rel_err in the layer's output
    space over the first minibatch's inputs (`_layer_output`). At steps = 1 the rows are `measure`'s of the
    first minibatch."""
    counts = set(step_counts(len(batches)))
    sums: dict = {}
    state: dict = {}
    reference: dict = {}
    probe: dict = {}
    rows = []
    for k, (x, y) in enumerate(batches, 1):
        recorded = record_pairs(model, x, y)
        for name, _, xin, _, g32 in recorded:
            reference[name] = reference.get(name, 0) + g32.to(torch.float64)
            probe.setdefault(name, xin)
        for point in points:
            cfg = point.config(base)
            for name, layer, xin, dout, _ in recorded:
                layer.essop_pairs.fill_(state.get((point, name), 0))
                g = _layer_grad(layer, point.mode, cfg, point.scaling, xin, dout)
                state[point, name] = int(layer.essop_pairs)
                sums[point, name] = sums.get((point, name), 0) + g
                if k in counts:
                    rows.append({**point.fields(cfg), "steps": k, "layer": name,
                                 **_comparison(layer, probe[name], sums[point, name], reference[name])})
            if progress:
                progress(point, k - 1)
    for _, layer in essop_layers(model):
        layer.essop_update = None
        layer.essop_pairs.zero_()
    return rows


def markdown_accumulated(rows: list[dict], title: str) -> str:
    """Per configuration, the median over layers of the summed update's output and weight relative error at
    every step count, and how much of its one-step error is left after the last (1/sqrt(steps) for noise that
    is independent from step to step and gradients that do not cancel)."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    counts = sorted({r["steps"] for r in rows})
    med = {(c, k, key): statistics.median(r[key] for r in rows if r["config"] == c and r["steps"] == k)
           for c in configs for k in counts for key in ("rel_err", "out_rel_err", "out_cosine")}
    last = counts[-1]
    lines = [title, "", "Median output rel. error of the summed update after k steps (weight-space rel. error in "
             "brackets):", "",
             "| configuration | " + " | ".join(f"k = {k}" for k in counts) +
             f" | k = {last} / k = 1 | output cosine, k = {last} |",
             "|---" * (len(counts) + 3) + "|"]
    for c in configs:
        cells = [f"{med[c, k, 'out_rel_err']:.3f} ({med[c, k, 'rel_err']:.3f})" for k in counts]
        ratio = med[c, last, "out_rel_err"] / med[c, 1, "out_rel_err"] if med[c, 1, "out_rel_err"] else float("nan")
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {ratio:.2f} | {med[c, last, 'out_cosine']:.3f} |")
    return "\n".join(lines)


def plot_accumulated(rows: list[dict], path: Path, title: str) -> None:
    plt = pyplot()

    configs = list(dict.fromkeys(r["config"] for r in rows))
    counts = sorted({r["steps"] for r in rows})
    fig, ax = plt.subplots(figsize=(11, 5.5))
    colours = plt.get_cmap("tab20").colors
    for i, c in enumerate(configs):
        ys = [statistics.median(r["out_rel_err"] for r in rows if r["config"] == c and r["steps"] == k)
              for k in counts]
        ax.plot(counts, ys, marker="o", label=c, color=colours[i % len(colours)],
                linestyle="--" if c.startswith("expected") else "-")
    top = max(statistics.median(r["out_rel_err"] for r in rows if r["config"] == c and r["steps"] == 1)
              for c in configs)
    ax.plot(counts, [top / k ** 0.5 for k in counts], color="grey", linewidth=0.8, linestyle=":",
            label="1/sqrt(k) (independent noise)")
    ax.set(xscale="log", yscale="log", xlabel="minibatches summed (k)",
           ylabel="median output rel. error of the summed update")
    ax.set_xticks(counts, [str(k) for k in counts])
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, path)


def markdown(rows: list[dict], title: str) -> str:
    configs = list(dict.fromkeys(r["config"] for r in rows))
    lines = [title, "", "| configuration | median cosine | min cosine | median rel. error | median quant. share "
             "| median zero fraction | saturated | median output cosine | median output rel. error |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in configs:
        rs = [r for r in rows if r["config"] == c]
        cos = [r["cosine"] for r in rs]
        lines.append(f"| {c} | {statistics.median(cos):.3f} | {min(cos):.3f} | "
                     f"{statistics.median(r['rel_err'] for r in rs):.3f} | "
                     f"{statistics.median(r['quant_share'] for r in rs):.2f} | "
                     f"{statistics.median(r['zero_frac'] for r in rs):.3f} | {any(r['saturated'] for r in rs)} | "
                     f"{statistics.median(r['out_cosine'] for r in rs):.3f} | "
                     f"{statistics.median(r['out_rel_err'] for r in rs):.3f} |")
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for key, what in (("cosine", "Cosine"), ("out_cosine", "Output cosine")):
        lines += ["", f"{what} per layer (first minibatch):", "",
                  "| layer | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
        for name in layers:
            vals = [next(r[key] for r in rows if r["config"] == c and r["layer"] == name and r["batch"] == 0)
                    for c in configs]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    plt = pyplot()

    configs = list(dict.fromkeys(r["config"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for ax, key, ylabel in ((axes[0], "cosine", "cosine with the FP32 gradient"),
                            (axes[1], "out_cosine", "output cosine (the layer's outputs\nmoved by g vs by g_fp32)")):
        for c in configs:
            ys = [statistics.mean(r[key] for r in rows if r["config"] == c and r["layer"] == name)
                  for name in layers]
            ax.plot(range(len(layers)), ys, marker=".", label=c,
                    linestyle="--" if c.startswith("expected") else "-")
        ax.set(ylabel=ylabel, ylim=(min(0.0, ax.get_ylim()[0]), 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)

"""ESSOP weight updates inside PyTorch layers: each Conv2d / Linear weight gradient is replaced by what an
ESSOP array of the layer's size produces; input gradients, BatchNorm and biases stay FP32.

One layer and one minibatch are a stream of vector pairs into a virtual array
`cfg.replace(rows=Cout, cols=Cin*k*k/groups, output_format="count")` of the user's `EssopConfig`:
- pairs are the im2col columns: at every output position of every image, x is the unfolded input patch
  (Cin*k*k values, F.unfold order, matching weight.view(Cout, -1)) and delta the output gradient (Cout values);
  pairs are numbered image by image, then output position in row-major order. A Linear layer has one pair
  per input row.
- pre-scale: x and delta are multiplied by powers of two 2**s_x, 2**s_d chosen from the layer's largest
  magnitudes so that those lie in [2**14, 2**15) before the cast to FP16: nothing overflows FP16.
- exponents (`scaling`):
  * "per_pair" (the array's default, `scaling="per_pair"`, acc_depth 1): every pair is its own group and
    the array's exponent max trees give E_x,p and E_d,p from its FP16 patterns (spec section 2);
  * "block": one group of all P pairs with block exponents E_x, E_d of the whole layer minibatch
    (`scaling="block"`, acc_depth P);
  * "per_sample": block groups of one image each (its pairs share the image's exponents).
  The gradient is the exact sum over groups g of C_g * 2**(E_x,g + E_d,g - L - lr_shift - s_x - s_d). Groups
  with the same exponent sum add as integers, so the kernel counts one *segment* per distinct sum
  (counts.segment_counts) and `exact_sum` adds the segments exactly (int64 fixed point, or Python integers
  when the exponents spread too far), rounding once to FP64 and then to the FP32 gradient.
- LFSR run-on: every layer keeps a counter `essop_pairs` (a buffer, so it is checkpointed) of the pairs its
  virtual array has processed since the start of training; pair p of a minibatch uses the cycles of pair
  number essop_pairs + p, so successive minibatches continue the random sequence.
- "expected" mode (an ablation without bitstreams): counts are replaced by their expectation
  BL * sum_p (+-a_pj b_pi) / 2**(2q) with the same magnitudes and exponents, summed exactly.
- Data-parallel training (torch.distributed initialised): ranks agree on the pre-scales (an all-reduce MAX),
  on the block exponents, and on the pair numbering (rank r's pairs follow those of ranks < r, exactly the
  numbering of one process on the whole batch); the integer counts of every exponent sum are all-reduced
  with SUM, which is exact, so every rank ends with the same gradient as one process.
- A NaN or Inf in a layer's activations or output gradient raises FloatingPointError naming the layer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from essop.config import EssopConfig
from essop.training import counts, fp16_tensors, random_tables

__all__ = [
    "EssopUpdate", "EssopConv2d", "EssopLinear", "convert", "attach", "essop_layers", "essop_weight_grad",
    "exact_sum", "MODES", "SCALINGS"
]

MODES = ("fp32", "essop", "expected")
SCALINGS = ("per_pair", "block", "per_sample")
#: The largest scaled magnitude lies in [2**(PRESCALE_TOP - 1), 2**PRESCALE_TOP): well inside FP16's range.
PRESCALE_TOP = 15


class EssopUpdate:
    """What every ESSOP layer of a model shares: the mode, the exponent granularity and the user's array
    configuration (BL, q, sharing, LFSR fields; rows, cols, acc_depth and output_format are set per layer).
    `backend` picks the counting kernel (counts.BACKENDS; "auto": native on CPU, torch on CUDA)."""

    def __init__(self, mode: str = "essop", cfg: EssopConfig | None = None, scaling: str = "per_pair",
                 backend: str = "auto", faults=None):
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, not {mode!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        cfg = EssopConfig() if cfg is None else cfg
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        random_tables.check_table_width(cfg)
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(map(repr, SCALINGS))}, not {scaling!r}")
        if backend not in counts.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, counts.BACKENDS))}, not {backend!r}")
        if faults is not None:
            from essop.training.faults import FaultSpec
            if not isinstance(faults, FaultSpec):
                raise TypeError(f"faults must be a FaultSpec, not {faults!r}")
            if mode != "essop":
                raise ValueError(f"faults are injected into the essop mode's bitstreams, not mode {mode!r} "
                                 f"(an FP32 run takes them with training.faults.attach_fp32_faults)")
            if backend.startswith("native"):
                raise ValueError(f"the native kernel does not inject faults: use backend 'torch' or 'auto', "
                                 f"not {backend!r}")
        self.mode, self.cfg, self.scaling, self.backend = mode, cfg, scaling, backend
        self.faults = faults

    def layer_config(self, rows: int, cols: int, pairs: int) -> EssopConfig:
        """The virtual array of one layer: per_pair groups of one pair, or block groups of many."""
        if self.scaling == "per_pair":
            return self.cfg.replace(rows=rows, cols=cols, acc_depth=1, scaling="per_pair", output_format="count")
        return self.cfg.replace(rows=rows, cols=cols, acc_depth=max(1, pairs), scaling="block",
                                output_format="count")

    def __repr__(self) -> str:
        return f"EssopUpdate(mode={self.mode!r}, scaling={self.scaling!r}, cfg={self.cfg!r})"


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _prescale(maxabs: float) -> int:
    """s with maxabs * 2**s in [2**(TOP-1), 2**TOP)."""
    _, e = math.frexp(maxabs)       # maxabs = f * 2**e, f in [0.5, 1)
    return PRESCALE_TOP - e


def exact_sum(counts: torch.Tensor, exponents: list[int], shift: int) -> torch.Tensor:
    """FP32 of sum_s counts[s] * 2**(exponents[s] + shift), with one rounding to FP64 and one to FP32 (the same
    two roundings as float(Fraction(exact sum)) followed by a cast to float32). counts: int64 [S, m, n]."""
    m, n = counts.shape[1:]
    if not exponents:
        return torch.zeros(m, n, dtype=torch.float32, device=counts.device)
    lo = min(exponents)
    spans = [e - lo for e in exponents]
    peaks = [int(v) for v in counts.abs().flatten(1).amax(1).tolist()]
    if sum(p << s for p, s in zip(peaks, spans)) < (1 << 62):
        total = torch.zeros(m, n, dtype=torch.int64, device=counts.device)
        for c, s in zip(counts, spans):
            total += c << s
        value = total.to(torch.float64)
    else:   # exponents too far apart for int64: exact Python integers (rare; small matrices)
        total = np.zeros((m, n), dtype=object)
        for c, s in zip(counts.cpu().numpy(), spans):
            total += c.astype(object) * (1 << s)
        value = torch.tensor(total.astype(np.float64), device=counts.device)   # float(int): correctly rounded
    return torch.ldexp(value, torch.tensor(float(lo + shift), dtype=torch.float64,
                                           device=value.device)).to(torch.float32)


class _ConvGeometry:
    """How a convolution's pairs are cut from its input map: one base address per pair into the zero-padded
    map, one offset per patch element (F.unfold order: channel, kernel row, kernel column)."""

    def __init__(self, layer: nn.Conv2d, x_shape, out_shape):
        self.k, self.stride = layer.kernel_size, layer.stride
        self.padding, self.dilation = layer.padding, layer.dilation
        self.B, self.cin = x_shape[0], x_shape[1]
        self.ho, self.wo = out_shape[2], out_shape[3]

    def pairs(self, x_map: torch.Tensor, s: int, backend: str) -> counts.Pairs:
        """Pairs (exponents still unset) of the FP16 patterns of x_map * 2**s [B, Cin, H, W]."""
        ph, pw = self.padding
        padded, chmax = fp16_tensors.prepare_map(x_map, s, ph, pw, backend)
        B, C = padded.shape[:2]
        sb, sc, sy, sx = padded.stride()          # NCHW or channels_last: addresses follow the strides
        dev = padded.device
        i64 = dict(dtype=torch.int64, device=dev)
        kh = torch.arange(self.k[0], **i64) * (self.dilation[0] * sy)
        kw = torch.arange(self.k[1], **i64) * (self.dilation[1] * sx)
        off = (torch.arange(C, **i64)[:, None, None] * sc + kh[None, :, None] + kw[None, None, :]).reshape(-1)
        b = torch.arange(B, **i64)[:, None, None] * sb
        oy = torch.arange(self.ho, **i64)[None, :, None] * (self.stride[0] * sy)
        ox = torch.arange(self.wo, **i64)[None, None, :] * (self.stride[1] * sx)
        # Largest |element| of every patch: a max-pool of the channel max (patterns order like magnitudes).
        vmax = F.max_pool2d(chmax[:, None].to(torch.float32), self.k, self.stride, 0, self.dilation)
        return counts.Pairs(_flat(padded), (b + oy + ox).reshape(-1), off,
                            torch.zeros(B * self.ho * self.wo, dtype=torch.int32, device=dev),
                            vmax.flatten().to(torch.int16))


def _flat(t: torch.Tensor) -> torch.Tensor:
    """The storage of a dense tensor (any memory format) as a flat view, element addresses by t.stride()."""
    return t.as_strided((t.numel(),), (1,))


def _map_pairs(t: torch.Tensor, s: int, backend: str) -> counts.Pairs:
    """Pairs of a [B, C, H, W] map read position by position: pair (b, y, x) holds its C channels (the
    output gradient of a convolution; a [B, C] Linear input or gradient as C x 1 x 1 maps)."""
    mp, chmax = fp16_tensors.prepare_map(t if t.ndim == 4 else t[:, :, None, None], s, 0, 0, backend)
    B, C, H, W = mp.shape
    sb, sc, sy, sx = mp.stride()
    i64 = dict(dtype=torch.int64, device=mp.device)
    base = (torch.arange(B, **i64)[:, None, None] * sb + torch.arange(H, **i64)[None, :, None] * sy
            + torch.arange(W, **i64)[None, None, :] * sx).reshape(-1)
    return counts.Pairs(_flat(mp), base, torch.arange(C, **i64) * sc,
                        torch.zeros(B * H * W, dtype=torch.int32, device=mp.device), chmax.reshape(-1))


def _group_exponents(scaling: str, vmax16: torch.Tensor, images: int, block_max: torch.Tensor) -> torch.Tensor:
    """int32 [P] exponent of every pair's group: its own (per_pair), its image's (per_sample), the layer's
    (block; block_max is the layer's largest FP16 pattern, the same on every rank)."""
    if scaling == "per_pair":
        return fp16_tensors.element_exponents(vmax16)
    if scaling == "block":
        return fp16_tensors.element_exponents(block_max.reshape(1)).expand(vmax16.numel()).to(torch.int32)
    per_image = vmax16.to(torch.int32).view(images, -1).amax(1)
    return fp16_tensors.element_exponents(per_image).repeat_interleave(vmax16.numel() // images)


def essop_weight_grad(layer: nn.Module, x_map: torch.Tensor, delta_map: torch.Tensor,
                      geom: _ConvGeometry | None) -> torch.Tensor:
    """The ESSOP (or expected) weight gradient [Cout, n] of one layer for one minibatch.

    x_map: the layer input ([B, n] for Linear, [B, Cin, H, W] for Conv2d with `geom`); delta_map: the
    output gradient ([B, m] or [B, m, Ho, Wo]). Both FP32."""
    upd: EssopUpdate = layer.essop_update
    name = getattr(layer, "essop_name", type(layer).__name__)
    x_map, delta_map = x_map.detach(), delta_map.detach()
    faulty = getattr(upd, "faults", None) is not None
    backend = counts.resolve_backend("torch" if faulty else upd.backend, x_map.device, upd.cfg)
    # [max|x|, max|delta|]; NaN propagates through the max, Inf stays Inf.
    maxes = torch.stack([fp16_tensors.absmax(x_map, backend), fp16_tensors.absmax(delta_map, backend)]).to(x_map.device)
    B = delta_map.shape[0]
    P_local = B if delta_map.ndim == 2 else B * delta_map.shape[2] * delta_map.shape[3]
    offset, P_total = 0, P_local
    if _distributed():
        dist.all_reduce(maxes, op=dist.ReduceOp.MAX)
        sizes = [torch.zeros(1, dtype=torch.int64, device=maxes.device) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, torch.tensor([P_local], dtype=torch.int64, device=maxes.device))
        sizes = [int(t) for t in sizes]
        offset, P_total = sum(sizes[:dist.get_rank()]), sum(sizes)
    mx, md = (float(v) for v in maxes.tolist())
    if not (math.isfinite(mx) and math.isfinite(md)):
        what = "activations" if not math.isfinite(mx) else "output gradient"
        raise FloatingPointError(f"non-finite value (NaN or Inf) in the {what} of layer {name!r}: "
                                 f"cannot form its ESSOP weight update")
    m = layer.weight.shape[0]
    n = layer.weight[0].numel()
    start = int(layer.essop_pairs)
    layer.essop_pairs += P_total
    device = x_map.device
    if mx == 0.0 or md == 0.0:
        grad = torch.zeros(m, n, dtype=torch.float32, device=device)
        if _distributed():   # keep the collectives of all ranks in step
            _allreduce_segments(torch.zeros(0, m, n, dtype=torch.int64, device=device), [])
        return grad
    cfg = upd.layer_config(m, n, P_total)
    sx, sd = _prescale(mx), _prescale(md)
    x_pairs = _map_pairs(x_map, sx, backend) if geom is None else geom.pairs(x_map, sx, backend)
    d_pairs = _map_pairs(delta_map, sd, backend)
    # The layer's largest FP16 patterns (the same on every rank): block scaling's exponents.
    block_max = torch.stack([fp16_tensors.fp16_patterns(maxes[:1], sx)[0], fp16_tensors.fp16_patterns(maxes[1:], sd)[0]])
    x_pairs.exp = _group_exponents(upd.scaling, x_pairs.vmax16, B, block_max[0])
    d_pairs.exp = _group_exponents(upd.scaling, d_pairs.vmax16, B, block_max[1])
    # Pairs that can count, grouped by exponent sum (stable, so each segment keeps the pair order). Under
    # faults every pair can count: a flipped bit can make a zero magnitude or a comparator bit nonzero.
    if faulty:
        active = torch.arange(P_local, device=device)
    else:
        active = ((x_pairs.vmax16 != 0) & (d_pairs.vmax16 != 0)).nonzero().flatten()
    ksum, perm = torch.sort((x_pairs.exp + d_pairs.exp)[active], stable=True)
    order = active[perm]
    keys, sizes = torch.unique_consecutive(ksum, return_counts=True)
    seg = torch.cat([torch.zeros(1, dtype=torch.int64, device=device), sizes.cumsum(0)])
    keys = [int(k) for k in keys.tolist()]
    expected = upd.mode == "expected"
    if faulty:
        from essop.training import faults
        if _distributed():
            raise ValueError("fault injection runs in one process, not data-parallel")
        plan = faults.layer_plan(upd.faults, cfg, P_local, name, start)
        totals = faults.faulty_segment_counts(cfg, x_pairs, d_pairs, order, seg, start, plan)
    else:
        totals = counts.segment_counts(cfg, x_pairs, d_pairs, order, seg, start + offset, backend,
                                       expected=expected)
    drop = (2 * cfg.q if expected else cfg.bl_log2 + cfg.lr_shift) + sx + sd
    if _distributed():
        totals, keys = _allreduce_segments(totals, keys)
    return exact_sum(totals, keys, -drop)


def _allreduce_segments(counts: torch.Tensor, keys: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Sum the per-exponent-sum counts of all ranks: a dense [k_lo .. k_hi] stack, all-reduced exactly."""
    dev = counts.device
    big = 1 << 30
    lo_hi = torch.tensor([min(keys) if keys else big, -(max(keys) if keys else -big)], dtype=torch.int64,
                         device=dev)
    dist.all_reduce(lo_hi, op=dist.ReduceOp.MIN)
    lo, hi = int(lo_hi[0]), -int(lo_hi[1])
    m, n = counts.shape[1:]
    if lo > hi:             # no rank counted anything
        dist.all_reduce(torch.zeros(1, dtype=torch.int64, device=dev))
        return counts[:0], []
    dense = torch.zeros(hi - lo + 1, m, n, dtype=torch.int64, device=dev)
    for c, k in zip(counts, keys):
        dense[k - lo] += c
    dist.all_reduce(dense)
    return dense, list(range(lo, hi + 1))


class _ConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.layer = layer
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        layer = ctx.layer
        grad_x = None
        if ctx.needs_input_grad[0]:
            # The real input (not torch.nn.grad.conv2d_input's expanded placeholder, which sends oneDNN down a
            # path of copies that costs more than FP32's whole backward).
            grad_x = torch.ops.aten.convolution_backward(grad_out, x, weight, None, layer.stride, layer.padding,
                                                         layer.dilation, False, [0, 0], layer.groups,
                                                         (True, False, False))[0]
        geom = _ConvGeometry(layer, x.shape, grad_out.shape)
        grad_w = essop_weight_grad(layer, x, grad_out, geom).view_as(weight)
        grad_b = grad_out.sum(dim=(0, 2, 3)) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class _LinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.layer = layer
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        rows_x, rows_d = x.reshape(-1, x.shape[-1]), grad_out.reshape(-1, grad_out.shape[-1])
        grad_x = (grad_out @ weight) if ctx.needs_input_grad[0] else None
        grad_w = essop_weight_grad(ctx.layer, rows_x, rows_d, None)
        grad_b = rows_d.sum(dim=0) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class _EssopLayer:
    essop_update: EssopUpdate | None

    def _init_essop(self) -> None:
        self.essop_update = None
        self.essop_name = type(self).__name__
        # Pairs this layer's virtual array has processed since training began (LFSR run-on position).
        self.register_buffer("essop_pairs", torch.zeros((), dtype=torch.int64))

    def _essop_active(self) -> bool:
        return self.essop_update is not None and self.essop_update.mode != "fp32" and torch.is_grad_enabled()


class EssopConv2d(_EssopLayer, nn.Conv2d):
    """nn.Conv2d whose weight gradient comes from ESSOP when an EssopUpdate in essop/expected mode is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_conv(self, type(self).__name__)
        self._init_essop()

    def forward(self, x):
        if not self._essop_active():
            return super().forward(x)
        return _ConvFn.apply(x, self.weight, self.bias, self)


class EssopLinear(_EssopLayer, nn.Linear):
    """nn.Linear whose weight gradient comes from ESSOP when an EssopUpdate in essop/expected mode is set;
    every row of a [..., in_features] input is one vector pair."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_essop()

    def forward(self, x):
        if not self._essop_active():
            return super().forward(x)
        return _LinearFn.apply(x, self.weight, self.bias, self)


def _check_conv(conv: nn.Conv2d, name: str) -> None:
    if conv.groups != 1:
        raise ValueError(f"layer {name!r}: ESSOP convolutions need groups=1 (one outer product per layer), "
                         f"not groups={conv.groups}")
    if conv.padding_mode != "zeros":
        raise ValueError(f"layer {name!r}: ESSOP convolutions support padding_mode='zeros' only, "
                         f"not {conv.padding_mode!r}")
    if isinstance(conv.padding, str):
        raise ValueError(f"layer {name!r}: ESSOP convolutions need numeric padding, not padding={conv.padding!r}")


def essop_layers(model: nn.Module) -> list[tuple[str, _EssopLayer]]:
    return [(name, mod) for name, mod in model.named_modules() if isinstance(mod, _EssopLayer)]


def attach(model: nn.Module, update: EssopUpdate) -> int:
    """Give every ESSOP layer of `model` the shared update settings; returns how many layers."""
    if not isinstance(update, EssopUpdate):
        raise TypeError(f"update must be an EssopUpdate, not {update!r}")
    layers = essop_layers(model)
    for name, mod in layers:
        mod.essop_update = update
        mod.essop_name = name
    return len(layers)


def _essop_copy(mod: nn.Module, name: str) -> nn.Module:
    """An EssopConv2d / EssopLinear with mod's hyper-parameters, parameters and buffers (same tensors)."""
    if isinstance(mod, nn.Conv2d):
        _check_conv(mod, name)
        new = EssopConv2d.__new__(EssopConv2d)
    else:
        new = EssopLinear.__new__(EssopLinear)
    new.__dict__.update(mod.__dict__)         # parameters, buffers, hooks and hyper-parameters stay
    new._parameters = dict(mod._parameters)
    new._buffers = dict(mod._buffers)
    new._modules = dict(mod._modules)
    new._init_essop()
    return new


def convert(model: nn.Module, update: EssopUpdate | None = None, exclude: tuple[str, ...] = ()) -> nn.Module:
    """Replace every nn.Conv2d and nn.Linear of `model` (in place; the model is returned) by its ESSOP
    counterpart with the same parameters (the same tensors), hyper-parameters and state-dict keys (plus each
    layer's `essop_pairs` counter), so that its weight gradients come from ESSOP; with `update`, attach it.

    Layers named in `exclude` (as in model.named_modules()) stay as they are. A layer the ESSOP update
    cannot form raises ValueError naming it, and the model is left unchanged: grouped or depthwise
    convolutions, padding modes other than 'zeros', string padding, other convolution types, and subclasses
    of Conv2d/Linear (whose forward may not be the plain one; exclude them to keep them FP32)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, not {model!r}")
    if update is not None and not isinstance(update, EssopUpdate):
        raise TypeError(f"update must be an EssopUpdate, not {update!r}")
    todo = []
    for name, mod in model.named_modules():
        if isinstance(mod, _EssopLayer) or name in exclude:
            continue
        label = name or type(mod).__name__
        if type(mod) in (nn.Conv2d, nn.Linear):
            if not name:
                raise ValueError("convert() needs a model that contains layers; wrap a single layer in "
                                 "nn.Sequential")
            todo.append((name, _essop_copy(mod, label)))
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"layer {label!r}: {type(mod).__name__} is a subclass of "
                             f"{'Conv2d' if isinstance(mod, nn.Conv2d) else 'Linear'}; convert() replaces plain "
                             f"layers only (pass exclude=({name!r},) to keep it FP32)")
        elif isinstance(mod, nn.modules.conv._ConvNd):
            raise ValueError(f"layer {label!r}: {type(mod).__name__} has no ESSOP counterpart (Conv2d and Linear "
                             f"have); pass exclude=({name!r},) to keep it FP32")
    for name, new in todo:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
    if update is not None:
        attach(model, update)
    return model

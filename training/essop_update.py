"""ESSOP weight updates for Conv2d and Linear layers.

In `essop` and `expected` modes the weight gradient of every convolution and fully connected layer is replaced
by what an ESSOP array of the layer's size would produce; input gradients, BatchNorm and biases stay FP32.

One layer, one minibatch = one accumulation group of a virtual array
`cfg.replace(rows=Cout, cols=Cin*k*k, acc_depth=P, scaling="block", output_format="count")`:
- pairs are the im2col columns: at every output position of every image, x is the unfolded input patch
  (Cin*k*k values, F.unfold order, matching weight.view(Cout, -1)) and delta the output gradient (Cout
  values); pairs are ordered image by image, then output position in row-major order. A Linear layer has one
  pair per image.
- before the cast to FP16, x and delta are multiplied by powers of two 2**s_x, 2**s_d chosen so that the
  largest magnitude lies in [2**14, 2**15): nothing overflows FP16 and nothing that would have a nonzero
  q-bit magnitude is flushed to zero. Block exponents E_x, E_d are those of the scaled FP16 values (the max
  of the element exponents, spec section 2), and the gradient is

      grad W = counts * 2**(E_x + E_d - L - s_x - s_d),

  exact in FP32 (counts < 2**24).
- LFSR run-on: every layer keeps a counter `essop_pairs` (a buffer, so it is checkpointed) of the pairs its
  virtual array has processed since the start of training; a minibatch's group starts at that pair number,
  so successive minibatches continue the random sequence instead of repeating it. With lfsr_restart every
  pair restarts the generators and the counter does not matter.
- `expected` mode (an ablation without bitstreams): counts are replaced by their expectation
  BL * sum_p (+-a_j b_i) / 2**(2q), i.e. grad W = sum_p (+-a_j b_i) * 2**(E_x + E_d - 2q - s_x - s_d),
  summed exactly in float64.
- Data-parallel training (torch.distributed initialised): ranks agree on the scale (an all-reduce MAX of the
  largest magnitudes) and on the pair numbering (rank r's pairs follow those of ranks < r), then the integer
  counts are all-reduced with SUM, which is exact; every rank ends with the same gradient.
- A NaN or Inf in a layer's activations or output gradient raises FloatingPointError naming the layer.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from essop.config import EssopConfig
from essop.training import kernel

MODES = ("fp32", "essop", "expected")
#: The largest scaled magnitude lies in [2**PRESCALE_TOP - 1, 2**PRESCALE_TOP): well inside FP16's range.
PRESCALE_TOP = 15


class EssopUpdate:
    """What every ESSOP layer of a model shares: the mode and the user's array configuration (BL, q,
    sharing, LFSR fields; rows, cols, acc_depth, scaling and output_format are set per layer)."""

    def __init__(self, mode: str = "essop", cfg: EssopConfig | None = None):
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, not {mode!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        cfg = EssopConfig() if cfg is None else cfg
        if not isinstance(cfg, EssopConfig):
            raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
        if cfg.lfsr_width > kernel.MAX_TABLE_WIDTH:
            raise ValueError(f"the training kernel tabulates LFSRs of width <= {kernel.MAX_TABLE_WIDTH}, "
                             f"not lfsr_width={cfg.lfsr_width!r}")
        self.mode, self.cfg = mode, cfg

    def layer_config(self, rows: int, cols: int, pairs: int) -> EssopConfig:
        return self.cfg.replace(rows=rows, cols=cols, acc_depth=pairs, scaling="block", output_format="count")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _prescale(maxabs: float) -> int:
    """s with maxabs * 2**s in [2**(TOP-1), 2**TOP)."""
    _, e = math.frexp(maxabs)       # maxabs = f * 2**e, f in [0.5, 1)
    return PRESCALE_TOP - e


def _to_fp16_bits(v: torch.Tensor, s: int) -> torch.Tensor:
    return torch.ldexp(v, torch.tensor(float(s), device=v.device)).to(torch.float16).view(torch.int16).to(torch.int32) & 0xFFFF


class _ConvGeometry:
    """How a convolution's pairs are cut from its input map (im2col without building it in full)."""

    def __init__(self, layer: nn.Conv2d, x_shape, out_shape):
        self.k, self.stride = layer.kernel_size, layer.stride
        self.padding, self.dilation = layer.padding, layer.dilation
        self.B, self.cin = x_shape[0], x_shape[1]
        self.ho, self.wo = out_shape[2], out_shape[3]

    def unfold(self, t: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(t, self.k, self.dilation, self.padding, self.stride)      # [B, n, L]
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    def pair_max(self, t: torch.Tensor) -> torch.Tensor:
        """Largest t (t >= 0) of every pair's patch, [P]: a max-pool of the channel max (padding is zero)."""
        cmax = t.amax(1, keepdim=True).to(torch.float32)   # CUDA max-pool has no integer kernels
        if all(p <= k // 2 for p, k in zip(self.padding, self.k)):
            return F.max_pool2d(cmax, self.k, self.stride, self.padding, self.dilation).flatten()
        return self.unfold(cmax).amax(1)

    def rows(self, t: torch.Tensor):
        """A function pairs -> patches [K, n] gathered straight from the zero-padded map (F.unfold order)."""
        ph, pw = self.padding
        padded = F.pad(t, (pw, pw, ph, ph)).contiguous()
        _, C, Hp, Wp = padded.shape
        dev = t.device
        kh = torch.arange(self.k[0], device=dev) * self.dilation[0]
        kw = torch.arange(self.k[1], device=dev) * self.dilation[1]
        ch = torch.arange(C, device=dev)
        # Flat offsets of one patch's elements relative to its top-left corner: [n] in (c, kh, kw) order.
        template = (ch[:, None, None] * (Hp * Wp) + kh[None, :, None] * Wp + kw[None, None, :]).reshape(-1)
        L = self.ho * self.wo

        def get(pairs: torch.Tensor) -> torch.Tensor:
            b, r = pairs // L, pairs % L
            base = b * (C * Hp * Wp) + (r // self.wo) * (self.stride[0] * Wp) + (r % self.wo) * self.stride[1]
            return torch.take(padded, base[:, None] + template[None, :])
        return get


def essop_weight_grad(layer: nn.Module, x_map: torch.Tensor, delta_map: torch.Tensor,
                      geom: _ConvGeometry | None) -> torch.Tensor:
    """The ESSOP (or expected) weight gradient [Cout, n] of one layer for one minibatch.

    x_map: the layer input ([B, n] for Linear, [B, Cin, H, W] for Conv2d with `geom`); delta_map: the
    output gradient ([B, m] or [B, m, Ho, Wo]). Both FP32."""
    upd: EssopUpdate = layer.essop_update
    name = getattr(layer, "essop_name", type(layer).__name__)
    x_map, delta_map = x_map.detach(), delta_map.detach()
    (xlo, xhi), (dlo, dhi) = torch.aminmax(x_map), torch.aminmax(delta_map)
    # [max|x|, max|delta|, any x < 0, any delta < 0]; NaN propagates through the max, Inf stays Inf.
    maxes = torch.stack([torch.maximum(-xlo, xhi), torch.maximum(-dlo, dhi),
                         (xlo < 0).to(xhi.dtype), (dlo < 0).to(dhi.dtype)]).to(torch.float32)
    P_local = delta_map.shape[0] if delta_map.ndim == 2 else delta_map.shape[0] * delta_map.shape[2] * delta_map.shape[3]
    offset, P_total = 0, P_local
    if _distributed():
        dist.all_reduce(maxes, op=dist.ReduceOp.MAX)
        sizes = [torch.zeros(1, dtype=torch.int64, device=maxes.device) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, torch.tensor([P_local], dtype=torch.int64, device=maxes.device))
        sizes = [int(t) for t in sizes]
        offset, P_total = sum(sizes[:dist.get_rank()]), sum(sizes)
    mx, md, neg_x, neg_d = (float(v) for v in maxes.tolist())
    if not (math.isfinite(mx) and math.isfinite(md)):
        what = "activations" if not math.isfinite(mx) else "output gradient"
        raise FloatingPointError(f"non-finite value (NaN or Inf) in the {what} of layer {name!r}: "
                                 f"cannot form its ESSOP weight update")
    m = layer.weight.shape[0]
    n = layer.weight[0].numel()
    start = int(layer.essop_pairs)
    layer.essop_pairs += P_total
    if mx == 0.0 or md == 0.0:
        grad = torch.zeros(m, n, dtype=torch.float32, device=x_map.device)
        if _distributed():   # keep the collectives of all ranks in step
            dist.all_reduce(grad)
        return grad
    cfg = upd.layer_config(m, n, P_total)
    sx, sd = _prescale(mx), _prescale(md)
    # The block exponent is the max of the element exponents; E(v) is monotone in |v| and so is the FP16
    # rounding, so it is the exponent of the largest scaled magnitude (same value on every rank).
    ex = int(kernel.element_exponents(_to_fp16_bits(maxes[:1], sx)).item())
    ed = int(kernel.element_exponents(_to_fp16_bits(maxes[1:2], sd)).item())
    sa_map = kernel.signed_magnitudes_f32(x_map, sx, ex, cfg.q)
    sb_map = kernel.signed_magnitudes_f32(delta_map, sd, ed, cfg.q)
    sb = _pairs_delta(sb_map)                                             # [P, m]
    if upd.mode == "essop" and cfg.sharing == "shared":
        # Gathers move the fewest bytes in the narrowest exact integer type: uint8 holds 0..255 (q <= 8,
        # ReLU inputs), int16 holds +-(2**q - 1) for any q <= 15.
        narrow = torch.uint8 if (not neg_x and cfg.q <= 8) else torch.int16 if cfg.q <= 15 else torch.int32
        sa_map = sa_map.to(narrow)
        abs_map = sa_map.abs() if neg_x else sa_map
        if geom is None:
            amax, rows_x = abs_map.amax(1), (lambda i: sa_map[i])
        else:
            amax, rows_x = geom.pair_max(abs_map), geom.rows(sa_map)
        sb = sb.to(torch.uint8 if (not neg_d and cfg.q <= 8) else torch.int16 if cfg.q <= 15 else torch.int32)
        bmax = (sb.abs() if neg_d else sb).amax(1)
        counts = kernel.counts_shared(cfg, amax, bmax, rows_x, lambda i: sb[i], start + offset,
                                      bool(neg_x), bool(neg_d))
    else:
        sa = sa_map if geom is None else geom.unfold(sa_map)              # [P, n]
        if upd.mode == "expected":
            acc = sb.to(torch.float64).t() @ sa.to(torch.float64)       # |a b| < 2**32: sums exact in float64
            if _distributed():
                dist.all_reduce(acc)
            return torch.ldexp(acc, torch.tensor(float(ex + ed - 2 * cfg.q - sx - sd), dtype=torch.float64,
                                                 device=acc.device)).to(torch.float32)
        counts = kernel.counts_per_element(cfg, sa, sb, start + offset)
    if _distributed():
        dist.all_reduce(counts)
    scale = ex + ed - cfg.bl_log2 - cfg.lr_shift - sx - sd
    return torch.ldexp(counts.to(torch.float64), torch.tensor(float(scale), dtype=torch.float64,
                                                              device=counts.device)).to(torch.float32)


def _pairs_delta(t: torch.Tensor) -> torch.Tensor:
    """Output gradient as pairs [P, m]: [B, m] stays; [B, m, H, W] -> image by image, row-major positions."""
    if t.ndim == 2:
        return t
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


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
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_out, layer.stride, layer.padding,
                                                layer.dilation, layer.groups)
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
        grad_x = grad_out @ weight if ctx.needs_input_grad[0] else None
        grad_w = essop_weight_grad(ctx.layer, x, grad_out, None)
        grad_b = grad_out.sum(dim=0) if ctx.has_bias else None
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
        self._init_essop()

    def forward(self, x):
        if not self._essop_active():
            return super().forward(x)
        if self.padding_mode != "zeros":
            raise ValueError(f"ESSOP layers support padding_mode='zeros' only, not {self.padding_mode!r}")
        return _ConvFn.apply(x, self.weight, self.bias, self)


class EssopLinear(_EssopLayer, nn.Linear):
    """nn.Linear whose weight gradient comes from ESSOP when an EssopUpdate in essop/expected mode is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_essop()

    def forward(self, x):
        if not self._essop_active():
            return super().forward(x)
        if x.ndim != 2:
            raise ValueError(f"EssopLinear expects [batch, features] inputs, not shape {tuple(x.shape)}")
        return _LinearFn.apply(x, self.weight, self.bias, self)


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

"""ESSOP layers: the weight gradient autograd sees is the golden model's counts times 2**(E_out - prescales);
ResNet-32 has 33 convolutions and one FC layer, all ESSOP layers."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import counts_reference
from essop.training.essop_update import EssopConv2d, EssopLinear, EssopUpdate, attach, essop_layers
from essop.training.resnet import resnet32


def _ref_grad(cfg_user, x_pairs, d_pairs, start):
    """Golden gradient from FP32 pairs: the documented pre-scale, FP16 cast, block exponents, counts."""
    P, n = x_pairs.shape
    m = d_pairs.shape[1]
    cfg = cfg_user.replace(rows=m, cols=n, acc_depth=P, scaling="block", output_format="count")
    sx = 15 - math.frexp(float(np.abs(x_pairs).max()))[1]
    sd = 15 - math.frexp(float(np.abs(d_pairs).max()))[1]
    xh = (x_pairs.astype(np.float64) * 2.0 ** sx).astype(np.float16)
    dh = (d_pairs.astype(np.float64) * 2.0 ** sd).astype(np.float16)
    ex, ed = fp16.vector_exponent(xh), fp16.vector_exponent(dh)
    counts, e_out = counts_reference(cfg, xh.view(np.uint16), dh.view(np.uint16), ex, ed, start_pair=start)
    return counts.astype(np.float64) * 2.0 ** (e_out - sx - sd), (xh, dh, ex, ed, sx, sd, cfg)


def _conv_case(seed, signed_input):
    g = torch.Generator().manual_seed(seed)
    conv = EssopConv2d(3, 8, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 3, 9, 9, generator=g)
    if not signed_input:
        x = F.relu(x)
    upstream = torch.randn(2, 8, 5, 5, generator=g) * 1e-3
    return conv, x, upstream


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
@pytest.mark.parametrize("signed_input", [False, True])
@pytest.mark.parametrize("bl", [4, 16])
def test_conv_weight_grad_is_golden(sharing, signed_input, bl):
    cfg = EssopConfig(bl=bl, sharing=sharing)
    conv, x, up = _conv_case(bl + signed_input, signed_input)
    attach(conv, EssopUpdate("essop", cfg))
    for step in range(2):                     # the second minibatch continues the LFSR sequence
        start = int(conv.essop_pairs)
        conv.weight.grad = conv.bias.grad = None
        x_req = x.clone().requires_grad_(True)
        out = conv(x_req)
        out.backward(up)
        xp = F.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27).numpy()
        dp = up.permute(0, 2, 3, 1).reshape(-1, 8).numpy()
        ref, _ = _ref_grad(cfg, xp, dp, start)
        assert np.array_equal(conv.weight.grad.view(8, -1).numpy().astype(np.float64), ref)
        assert np.abs(ref).sum() > 0
        assert int(conv.essop_pairs) == start + 50
        # Input and bias gradients stay exact FP32 autograd.
        x_ref = x.clone().requires_grad_(True)
        F.conv2d(x_ref, conv.weight.detach(), conv.bias.detach(), 2, 1).backward(up)
        assert torch.equal(x_req.grad, x_ref.grad)
        assert torch.allclose(conv.bias.grad, up.sum((0, 2, 3)))


def test_linear_weight_grad_is_golden_and_expected_mode_is_the_mean():
    g = torch.Generator().manual_seed(1)
    lin = EssopLinear(12, 5)
    x = F.relu(torch.randn(16, 12, generator=g))
    up = torch.randn(16, 5, generator=g) * 1e-2
    cfg = EssopConfig(bl=32)
    attach(lin, EssopUpdate("essop", cfg))
    lin(x).backward(up)
    ref, (xh, dh, ex, ed, sx, sd, lcfg) = _ref_grad(cfg, x.numpy(), up.numpy(), 0)
    assert np.array_equal(lin.weight.grad.numpy().astype(np.float64), ref)
    # expected: sum_p (+-a)(+-b) * 2**(E_x + E_d - 2q) with the same magnitudes.
    lin.weight.grad = None
    attach(lin, EssopUpdate("expected", cfg))
    lin(x).backward(up)
    a, s_a, _, _ = fp16.to_magnitudes(xh, ex, cfg.q)
    b, s_b, _, _ = fp16.to_magnitudes(dh, ed, cfg.q)
    exp_ref = ((b * (1 - 2 * s_b)).T @ (a * (1 - 2 * s_a))).astype(np.float64) * 2.0 ** (ex + ed - 2 * cfg.q - sx - sd)
    assert np.array_equal(lin.weight.grad.numpy().astype(np.float64), exp_ref.astype(np.float32).astype(np.float64))


def test_fp32_mode_is_plain_autograd():
    conv, x, up = _conv_case(0, True)
    ref = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    ref.load_state_dict({k: v for k, v in conv.state_dict().items() if k != "essop_pairs"})
    attach(conv, EssopUpdate("fp32"))
    conv(x).backward(up)
    ref(x).backward(up)
    assert torch.equal(conv.weight.grad, ref.weight.grad)
    assert int(conv.essop_pairs) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_gradient_raises_naming_the_layer(bad):
    model = nn.Sequential(EssopLinear(4, 3))
    attach(model, EssopUpdate("essop"))
    x = torch.ones(2, 4)
    x[1, 2] = bad
    with pytest.raises(FloatingPointError, match=r"^non-finite value \(NaN or Inf\) in the activations of layer '0'"):
        model(x).sum().backward()


def test_update_settings_are_checked():
    with pytest.raises(ValueError, match=r"^mode must be one of 'fp32', 'essop', 'expected', not 'sgd'$"):
        EssopUpdate("sgd")
    with pytest.raises(TypeError, match=r"^cfg must be an EssopConfig, not 16$"):
        EssopUpdate("essop", 16)
    with pytest.raises(ValueError, match=r"^the training kernel tabulates LFSRs of width <= 24, not lfsr_width=25$"):
        EssopUpdate("essop", EssopConfig(lfsr_width=25))


def test_resnet32_has_33_convolutions_and_one_fc_all_essop():
    model = resnet32()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 33 and len(fcs) == 1
    assert len(essop_layers(model)) == 34
    assert sum(1 for c in convs if c.kernel_size == (1, 1)) == 2          # the two projection shortcuts
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)

"""ESSOP layers: the weight gradient autograd sees is the golden model's, group by group, summed exactly and
rounded once to FP64 and once to FP32 — for per_pair, per_sample and block exponents, both sharing modes and
every counting backend; convert() and the model registry build ResNets of ESSOP layers."""
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.array import EssopArrayModel, counts_reference
from essop.training import models, native
from essop.training.layers import (EssopConv2d, EssopLinear, EssopUpdate, attach, convert, essop_layers,
                                         exact_sum)
from essop.training.counts import resolve_backend

BACKENDS = ["native", "native-scalar", "torch"]


def _groups(scaling, P, images):
    if scaling == "per_pair":
        return [(p, p + 1) for p in range(P)]
    if scaling == "per_sample":
        L = P // images
        return [(b * L, (b + 1) * L) for b in range(images)]
    return [(0, P)]


def ref_grad(cfg_user, scaling, x_pairs, d_pairs, start, images, mode="essop"):
    """The golden gradient from FP32 pairs: the documented pre-scale and FP16 cast, then group by group the
    golden array (per_pair: EssopArrayModel cycle by cycle; block groups: counts_reference), the exact sum of
    C_g * 2**(E_out,g - s_x - s_d) as a Fraction, rounded like float32(float(sum))."""
    P, n = x_pairs.shape
    m = d_pairs.shape[1]
    sx = 15 - np.frexp(np.abs(x_pairs).max())[1]
    sd = 15 - np.frexp(np.abs(d_pairs).max())[1]
    xh = (x_pairs.astype(np.float64) * 2.0 ** sx).astype(np.float16)
    dh = (d_pairs.astype(np.float64) * 2.0 ** sd).astype(np.float16)
    total = [[Fraction(0)] * n for _ in range(m)]
    for g0, g1 in _groups(scaling, P, images):
        xg, dg = xh[g0:g1].view(np.uint16), dh[g0:g1].view(np.uint16)
        ex, ed = fp16.vector_exponent(xg), fp16.vector_exponent(dg)
        if mode == "expected":
            a, s_a, _, _ = fp16.to_magnitudes(xg, ex, cfg_user.q)
            b, s_b, _, _ = fp16.to_magnitudes(dg, ed, cfg_user.q)
            counts = (b * (1 - 2 * s_b.astype(np.int64))).T @ (a * (1 - 2 * s_a.astype(np.int64)))
            e_out = ex + ed - 2 * cfg_user.q
        elif scaling == "per_pair":
            cfg = cfg_user.replace(rows=m, cols=n, acc_depth=1, scaling="per_pair", output_format="count")
            model = EssopArrayModel(cfg)
            model.pairs_done = start + g0
            res = model.process_group(xg, dg)
            counts, e_out = res.counts, res.e_out
        else:
            cfg = cfg_user.replace(rows=m, cols=n, acc_depth=g1 - g0, scaling="block", output_format="count")
            counts, e_out = counts_reference(cfg, xg, dg, ex, ed, start_pair=start + g0)
        w = Fraction(2) ** int(e_out - sx - sd)
        for i, j in zip(*np.nonzero(counts)):
            total[i][j] += int(counts[i, j]) * w
    return np.array([[float(v) for v in row] for row in total]).astype(np.float32)


def _conv_case(seed, signed_input, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    conv = EssopConv2d(3, 8, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 3, 9, 9, generator=g) * torch.exp(torch.randn(2, 3, 9, 9, generator=g))
    if not signed_input:
        x = F.relu(x)
    upstream = torch.randn(2, 8, 5, 5, generator=g) * 1e-3 * torch.exp(2 * torch.randn(2, 8, 5, 5, generator=g))
    if channels_last:     # oneDNN hands ResNet's maps and gradients over in this memory format
        x, upstream = x.to(memory_format=torch.channels_last), upstream.to(memory_format=torch.channels_last)
    return conv, x, upstream


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scaling", ["per_pair", "per_sample", "block"])
@pytest.mark.parametrize("sharing,signed_input,bl,channels_last,source", [
    ("shared", False, 16, False, {}), ("shared", True, 4, True, {}), ("per_element", False, 4, True, {}),
    ("per_element", True, 16, False, {}), ("shared", False, 16, True, {"rng": "sobol"}),
    ("per_element", True, 8, False, {"rng": "sobol", "rng_shift": True})], ids=str)
def test_conv_weight_grad_is_golden(backend, scaling, sharing, signed_input, bl, channels_last, source):
    cfg = EssopConfig(bl=bl, sharing=sharing, **source)
    conv, x, up = _conv_case(bl + signed_input, signed_input, channels_last)
    attach(conv, EssopUpdate("essop", cfg, scaling, backend))
    for step in range(2):                     # the second minibatch continues the LFSR sequence
        start = int(conv.essop_pairs)
        conv.weight.grad = conv.bias.grad = None
        x_req = x.clone().requires_grad_(True)
        conv(x_req).backward(up)
        xp = F.unfold(x.contiguous(), 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27).numpy()
        dp = up.permute(0, 2, 3, 1).reshape(-1, 8).numpy()
        ref = ref_grad(cfg, scaling, xp, dp, start, images=2)
        assert np.array_equal(conv.weight.grad.view(8, -1).numpy(), ref)
        assert np.abs(ref).sum() > 0
        assert int(conv.essop_pairs) == start + 50
        # Input and bias gradients stay exact FP32 autograd.
        x_ref = x.clone().requires_grad_(True)
        F.conv2d(x_ref, conv.weight.detach(), conv.bias.detach(), 2, 1).backward(up)
        assert torch.equal(x_req.grad, x_ref.grad)
        assert torch.allclose(conv.bias.grad, up.sum((0, 2, 3)))


@pytest.mark.parametrize("scaling", ["per_pair", "per_sample", "block"])
@pytest.mark.parametrize("mode", ["essop", "expected"])
def test_linear_weight_grad_is_golden(scaling, mode):
    g = torch.Generator().manual_seed(1)
    lin = EssopLinear(12, 5)
    x = F.relu(torch.randn(16, 12, generator=g)) * torch.exp(torch.randn(16, 1, generator=g))
    up = torch.randn(16, 5, generator=g) * 1e-2
    cfg = EssopConfig(bl=32)
    attach(lin, EssopUpdate(mode, cfg, scaling))
    lin(x).backward(up)
    ref = ref_grad(cfg, scaling, x.numpy(), up.numpy(), 0, images=16, mode=mode)
    assert np.array_equal(lin.weight.grad.numpy(), ref)


def test_expected_conv_grad_is_golden():
    cfg = EssopConfig(bl=16)
    conv, x, up = _conv_case(5, True)
    attach(conv, EssopUpdate("expected", cfg, "per_pair"))
    conv(x).backward(up)
    xp = F.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27).numpy()
    dp = up.permute(0, 2, 3, 1).reshape(-1, 8).numpy()
    assert np.array_equal(conv.weight.grad.view(8, -1).numpy(), ref_grad(cfg, "per_pair", xp, dp, 0, 2, "expected"))


def test_exact_sum_rounds_the_exact_value_once_to_fp64_and_once_to_fp32():
    """Exponents 100 apart do not fit an int64 fixed point: the Python-integer path gives the same rounding."""
    rng = np.random.default_rng(0)
    counts = torch.from_numpy(rng.integers(-2 ** 40, 2 ** 40, (3, 4, 5)))
    for exps in ([-3, 0, 5], [-60, 0, 40], [0, 1, 2]):
        got = exact_sum(counts, exps, -7).numpy()
        ref = np.array([[float(sum(Fraction(int(counts[s, i, j])) * Fraction(2) ** (e - 7)
                                   for s, e in enumerate(exps))) for j in range(5)] for i in range(4)], np.float32)
        assert np.array_equal(got, ref)


def test_one_output_row_gives_golden_counts():
    """EssopLinear(16, 1): a [1, K] operand once gave garbage counts through torch._int_mm."""
    g = torch.Generator().manual_seed(4)
    lin = EssopLinear(16, 1)
    x, up = F.relu(torch.randn(8, 16, generator=g)), torch.randn(8, 1, generator=g)
    for backend in BACKENDS:
        attach(lin, EssopUpdate("essop", EssopConfig(bl=8), "block", backend))
        lin.weight.grad = None
        lin.essop_pairs.zero_()
        lin(x).backward(up)
        assert np.array_equal(lin.weight.grad.numpy(), ref_grad(EssopConfig(bl=8), "block", x.numpy(), up.numpy(), 0, 8))


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
    with pytest.raises(ValueError, match=r"^scaling must be one of 'per_pair', 'block', 'per_sample', not 'layer'$"):
        EssopUpdate("essop", scaling="layer")
    with pytest.raises(ValueError, match=r"^backend must be one of 'auto', 'native', 'native-scalar', 'torch', not 'x'$"):
        EssopUpdate("essop", backend="x")


def test_native_backend_refuses_what_it_cannot_run():
    """The native kernel runs on the CPU only. (It used to refuse per_element configurations whose step count
    shared a factor with 2**w - 1, such as q = 10 with 10 shifts per cycle at w = 16; the step rule now gives
    them 11 shifts, and EssopConfig refuses explicit step counts that share a factor, so it takes them all.)"""
    cfg = EssopConfig(q=10, sharing="per_element")       # default steps 11, coprime with 2**16 - 1
    with pytest.raises(ValueError, match=r"^the native kernel runs on the CPU, not cuda$"):
        resolve_backend("native", torch.device("cuda"), cfg)
    assert resolve_backend("auto", torch.device("cuda"), cfg) == "torch"
    assert resolve_backend("auto", torch.device("cpu"), cfg) == ("native" if native.available("simd")[0] else "torch")
    assert resolve_backend("auto", torch.device("cpu"), cfg.replace(rng="sobol", rng_shift=True)) == \
        resolve_backend("auto", torch.device("cpu"), cfg)


@pytest.mark.parametrize("name,convs", [("resnet8", 9), ("resnet20", 21), ("resnet32", 33), ("resnet56", 57)])
def test_registry_builds_resnets_of_essop_layers(name, convs):
    model = models.build(name)
    convs_found = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs_found) == convs and all(isinstance(m, EssopConv2d) for m in convs_found)
    assert sum(1 for m in model.modules() if isinstance(m, EssopLinear)) == 1
    assert len(essop_layers(model)) == convs + 1
    assert sum(1 for c in convs_found if c.kernel_size == (1, 1)) == 2          # the two projection shortcuts
    assert sorted({c.out_channels for c in convs_found}) == [16, 32, 64]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"^model must be one of resnet8, resnet20, resnet32, resnet44, resnet56, not 'vgg'$"):
        models.build("vgg")


def test_convert_keeps_weights_and_state_dict_and_trains_a_users_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dilation=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, dilation=2,
                        padding=2, bias=False), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 8, 8)
    out_before = net(x)
    convert(net, EssopUpdate("essop", EssopConfig(bl=8)))
    after = net.state_dict()
    assert set(after) == set(before) | {"0.essop_pairs", "2.essop_pairs", "4.essop_pairs"}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(net(x), out_before)
    assert [type(m) for m in net] == [EssopConv2d, nn.ReLU, EssopConv2d, nn.Flatten, EssopLinear]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    opt.step()
    assert int(net[2].essop_pairs) == 2 * 4 * 4


def test_convert_refuses_layers_it_cannot_form_naming_them():
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match=r"^layer '0': ESSOP convolutions need groups=1"):
        convert(grouped)
    assert type(grouped[0]) is nn.Conv2d                     # left unchanged
    with pytest.raises(ValueError, match=r"^layer '0': ESSOP convolutions support padding_mode='zeros' only, not 'circular'$"):
        convert(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")))
    with pytest.raises(ValueError, match=r"^layer 'conv': Conv1d has no ESSOP counterpart"):
        convert(nn.ModuleDict({"conv": nn.Conv1d(2, 2, 3)}))
    kept = convert(nn.ModuleDict({"conv": nn.Conv1d(2, 2, 3), "fc": nn.Linear(2, 2)}), exclude=("conv",))
    assert type(kept["conv"]) is nn.Conv1d and type(kept["fc"]) is EssopLinear

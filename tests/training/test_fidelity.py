"""essop fidelity: per-layer comparison of ESSOP gradients with FP32 ones, on a small network and data."""
import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training_fixtures import synthetic_images, write_batches
from essop.app import training_commands
from essop.config import EssopConfig
from essop.training import fidelity, models


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_measures_every_layer_and_orders_the_configurations_as_expected():
    torch.manual_seed(0)
    model = models.build("resnet8")
    points = fidelity.grid(["essop", "expected"], [8, 256], ["per_pair", "block"], ["shared"])
    rows = fidelity.measure(model, [_batch()], points, EssopConfig())
    layers = 9 + 1
    assert len(rows) == len(points) * layers
    by = {p.label: [r for r in rows if r["config"] == p.label] for p in points}
    med = {k: sorted(r["cosine"] for r in v)[len(v) // 2] for k, v in by.items()}
    # Quantisation alone keeps the gradient; longer bitstreams and per-pair exponents bring ESSOP closer.
    assert med["expected per_pair"] > 0.95
    assert med["essop per_pair shared BL 256"] > med["essop per_pair shared BL 8"]
    assert med["essop per_pair shared BL 8"] > med["essop block shared BL 8"]
    assert all(r["quant_share"] == 1.0 for r in by["expected per_pair"])
    assert all(0 <= r["zero_frac"] < 1 and not r["saturated"] for r in rows)
    assert all(-1 <= r["cosine"] <= 1 and r["rel_err"] >= 0 for r in rows)
    # The layers get their FP32 behaviour back afterwards.
    assert all(layer.essop_update is None for _, layer in fidelity.essop_layers(model))


def test_command_writes_csv_markdown_and_plot(tmp_path):
    data = write_batches(tmp_path / "b", n_train=32, n_test=8)
    parser = argparse.ArgumentParser()
    training_commands.add_arguments("fidelity", parser)
    args = parser.parse_args(["--model", "resnet8", "--batch-size", "16", "--bl", "8", "--scaling", "per_pair",
                              "--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--out",
                              str(tmp_path / "fid"), "--threads", "1"])
    assert training_commands.run("fidelity", args) == 0
    with open(tmp_path / "fid" / "fidelity.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["config"] for r in rows} == {"expected per_pair", "essop per_pair shared BL 8"}
    md = (tmp_path / "fid" / "fidelity.md").read_text()
    assert "| essop per_pair shared BL 8 |" in md and "| layer1.0.conv1 |" in md
    assert (tmp_path / "fid" / "fidelity.png").stat().st_size > 10_000


def test_sobol_rows_with_rng(tmp_path):
    """--rng lfsr sobol: a row per source (the Sobol ones named), each from its own configuration; the Sobol
    gradient is closer to FP32 than the LFSR one at the same BL (its counts are nearly exact per block)."""
    torch.manual_seed(0)
    model = models.build("resnet8")
    assert [p.label for p in fidelity.grid(["essop"], [16], ["per_pair"], ["shared"], ["lfsr", "sobol"])] == \
        ["essop per_pair shared BL 16", "essop per_pair shared BL 16 sobol"]
    points = fidelity.grid(["essop"], [16], ["per_pair"], ["shared"], ["lfsr", "sobol"], rng_shift=True)
    assert [p.label for p in points] == ["essop per_pair shared BL 16 lfsr+shift",
                                         "essop per_pair shared BL 16 sobol+shift"]
    rows = fidelity.measure(model, [_batch()], points, EssopConfig())
    assert {r["rng"] for r in rows} == {"lfsr+shift", "sobol+shift"}
    med = {p.label: sorted(r["cosine"] for r in rows if r["config"] == p.label)[5] for p in points}
    assert med["essop per_pair shared BL 16 sobol+shift"] > med["essop per_pair shared BL 16 lfsr+shift"]
    parser = argparse.ArgumentParser()
    training_commands.add_arguments("fidelity", parser)
    assert parser.parse_args(["--rng", "lfsr", "sobol"]).rng == ["lfsr", "sobol"]


def test_output_space_error_sees_what_shared_random_numbers_do():
    """out_cosine / out_rel_err compare conv(x, g) with conv(x, g_fp32) (conv(x, w) is the layer's own forward
    pass with weights w); shared random numbers put the error where the data are: at BL 16 the per_element
    error is about as large in the weights but moves the outputs far less."""
    torch.manual_seed(0)
    model = models.build("resnet8")
    xs, ys = synthetic_images(32, 0)
    x, y = torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255 - 0.4, torch.from_numpy(ys)
    for name, layer, xin, _, _ in fidelity.record_pairs(model, x, y):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).to(torch.float64)
        own = layer(xin) if layer.bias is None else layer(xin) - layer.bias.detach()
        torch.testing.assert_close(fidelity._layer_output(layer, xin, w), own.detach().to(torch.float64),
                                   rtol=1e-4, atol=1e-5, msg=name)
    points = fidelity.grid(["essop"], [16], ["per_pair"], ["shared", "per_element"])
    rows = fidelity.measure(model, [(x, y)], points, EssopConfig())
    med = {(p.sharing, key): statistics.median(r[key] for r in rows if r["config"] == p.label)
           for p in points for key in ("rel_err", "out_rel_err", "out_cosine")}
    assert med["per_element", "out_rel_err"] < 0.75 * med["shared", "out_rel_err"]
    assert med["shared", "out_rel_err"] / med["shared", "rel_err"] > \
        1.3 * med["per_element", "out_rel_err"] / med["per_element", "rel_err"]
    assert med["per_element", "out_cosine"] > med["shared", "out_cosine"]
    assert all(-1 <= r["out_cosine"] <= 1 and r["out_rel_err"] >= 0 for r in rows)


def test_element_words_give_per_element_numbers_from_the_shared_registers():
    """--element-words: each LFSR per_element point is followed by its element-words twin (one LFSR per side, a
    constant word per element), measured with that configuration; like per_element generators, its error
    moves the outputs far less than the shared generators' error."""
    points = fidelity.grid(["essop"], [16], ["per_pair"], ["shared", "per_element"], ["lfsr", "sobol"],
                           element_words=True)
    assert [p.label for p in points] == [
        "essop per_pair shared BL 16", "essop per_pair per_element BL 16",
        "essop per_pair per_element BL 16 lfsr+words", "essop per_pair shared BL 16 sobol",
        "essop per_pair per_element BL 16 sobol"]
    torch.manual_seed(0)
    model = models.build("resnet8")
    xs, ys = synthetic_images(32, 0)
    x, y = torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255 - 0.4, torch.from_numpy(ys)
    rows = fidelity.measure(model, [(x, y)], points[:3], EssopConfig())
    assert {r["rng"] for r in rows} == {"lfsr", "lfsr+words"}
    med = {p.label: statistics.median(r["out_rel_err"] for r in rows if r["config"] == p.label) for p in points[:3]}
    assert med["essop per_pair per_element BL 16 lfsr+words"] < 0.75 * med["essop per_pair shared BL 16"]


def test_protocol_points_are_the_rows_configurations_once_each():
    """--protocol: one point per distinct ESSOP/expected configuration of the rows (seeds and FP32 rows add
    none), each with the row's own source and shift; a row with another array is refused by name."""
    base = EssopConfig()
    rows = [("fp32", "fp32", "per_pair", base),
            ("a", "essop", "per_pair", base.replace(bl=16)),
            ("a-s1", "essop", "per_pair", base.replace(bl=16)),
            ("e", "expected", "per_pair", base),
            ("shift", "essop", "per_pair", base.replace(bl=16, rng_shift=True)),
            ("sobol", "essop", "per_pair", base.replace(bl=8, rng="sobol")),
            ("pe", "essop", "per_pair", base.replace(bl=16, sharing="per_element")),
            ("blk", "essop", "block", base.replace(bl=16)),
            ("words", "essop", "per_pair", base.replace(bl=16, sharing="per_element", element_words=True))]
    assert [p.label for p in fidelity.protocol_points(rows, base)] == [
        "essop per_pair shared BL 16", "expected per_pair", "essop per_pair shared BL 16 lfsr+shift",
        "essop per_pair shared BL 8 sobol", "essop per_pair per_element BL 16", "essop block shared BL 16",
        "essop per_pair per_element BL 16 lfsr+words"]
    with pytest.raises(ValueError, match=r"row 'q6' sets q=6"):
        fidelity.protocol_points(rows + [("q6", "essop", "per_pair", base.replace(q=6))], base)
    with pytest.raises(ValueError, match="no ESSOP or expected row"):
        fidelity.protocol_points(rows[:1], base)


def test_command_measures_a_protocols_rows(tmp_path):
    """`essop fidelity --protocol`: the rows' configurations on the rows' network (ResNet-8 here); a row the
    command's array cannot measure is one line naming it."""
    data = write_batches(tmp_path / "b", n_train=32, n_test=8)
    protocol = Path(__file__).with_name("tiny_protocol.json")
    parser = argparse.ArgumentParser()
    training_commands.add_arguments("fidelity", parser)
    common = ["--protocol", str(protocol), "--batch-size", "16", "--data", str(data), "--cache-dir",
              str(tmp_path / "cache"), "--out", str(tmp_path / "fid"), "--threads", "1"]
    assert training_commands.run("fidelity", parser.parse_args(common)) == 0
    with open(tmp_path / "fid" / "fidelity.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(dict.fromkeys(r["config"] for r in rows)) == ["essop per_pair shared BL 8", "essop block shared BL 8"]
    assert len(rows) == 2 * (9 + 1)                                   # ResNet-8: 9 convolutions and the FC layer
    assert "the configurations of" in (tmp_path / "fid" / "fidelity.md").read_text()
    with pytest.raises(ValueError, match=r"tiny_protocol.json: row 'essop-per_pair-bl8' sets q=8"):
        training_commands.run("fidelity", parser.parse_args(common + ["--q", "6"]))


def test_fixed_bias_share_of_the_lfsr_pair_and_its_removal_by_the_shift():
    """G_exp is the expected mode's gradient (the one training uses) up to its constant scale; the LFSR pair's
    long-run bias is a few % of it, and the per-pair shift removes it; per_element has no one table."""
    torch.manual_seed(0)
    model = models.build("resnet8")
    x, y = (t[:4] for t in _batch())
    cfg = EssopConfig(bl=16)
    names = [name for name, _ in fidelity.essop_layers(model)]
    for name, layer, xin, dout, _ in fidelity.record_pairs(model, x, y):
        layer.essop_update = fidelity.EssopUpdate("expected", cfg, "per_pair")
        layer.essop_pairs.zero_()
        geom = fidelity._ConvGeometry(layer, xin.shape, dout.shape) if isinstance(layer, fidelity.EssopConv2d) \
            else None
        expected = fidelity.essop_weight_grad(layer, xin, dout, geom).to(torch.float64)
        layer.essop_update = None
        g_exp, _, pairs = fidelity._bias_gradients(layer, cfg, "per_pair", xin, dout,
                                                    torch.zeros(256, 256, dtype=torch.float64))
        assert g_exp.shape == expected.shape and pairs == dout.numel() // dout.shape[1]
        assert float(torch.nn.functional.cosine_similarity(g_exp.flatten(), expected.flatten(), dim=0)) == \
            pytest.approx(1.0, abs=1e-9), name
    rows = fidelity.fixed_bias_share(model, x, y, cfg)
    assert [r["layer"] for r in rows] == names
    assert all(1e-4 < r["rel_bias"] < 0.2 and -1.0 <= r["cos_bias"] <= 1.0 for r in rows), rows
    shifted = fidelity.fixed_bias_share(model, x, y, cfg.replace(rng_shift=True))
    assert all(r["rel_bias"] < 1e-6 for r in shifted), shifted
    with pytest.raises(ValueError, match="needs sharing='shared'"):
        fidelity.fixed_bias_share(model, x, y, cfg.replace(sharing="per_element"))


def test_bias_share_script(tmp_path, capsys):
    """scripts/bias_share.py on saved weights and synthetic CIFAR batches: a row per layer and the median; a
    missing weights file is one line and exit 2."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import bias_share
    data = tmp_path / "data"
    write_batches(data, n_train=16, n_test=4)
    weights = tmp_path / "model.pt"
    torch.manual_seed(0)
    model = models.build("resnet8")
    torch.save(model.state_dict(), weights)
    common = ["--model", "resnet8", "--batch-size", "4", "--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    assert bias_share.main([str(weights), *common]) == 0
    out = capsys.readouterr().out
    layers = [name for name, _ in fidelity.essop_layers(model)]
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| layer | pairs")]
    assert [r.split("|")[1].strip() for r in rows] == layers
    assert f"median over {len(layers)} layers: bias / gradient norm" in out
    assert bias_share.main([str(tmp_path / "missing.pt"), *common]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("bias_share: error: ") and "missing.pt" in err


@pytest.mark.parametrize("content, needle", [
    (None, "No such file"),
    ('{"name": "p", "train": {"epochs": 1}, "rows": [{"name": "a", "mode": "essop", "bl": 0}]}', "row 'a'"),
    ('{"name": "p", "train": {"epochs": 1}, "rows": [{"name": "a", "mode": "fp32"}]}', "no ESSOP or expected row"),
])
def test_bad_protocol_is_one_line_and_exit_2(tmp_path, content, needle):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    res = subprocess.run([sys.executable, "-m", "essop.app", "fidelity", "--protocol", str(path), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("essop fidelity: error: ") and needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def _synthetic_batches(count, n=16):
    out = []
    for s in range(count):
        xs, ys = synthetic_images(n, s)
        out.append((torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255 - 0.4, torch.from_numpy(ys)))
    return out


def test_step_counts_are_powers_of_two_and_the_last():
    assert fidelity.step_counts(1) == [1]
    assert fidelity.step_counts(2) == [1, 2]
    assert fidelity.step_counts(5) == [1, 2, 4, 5]
    assert fidelity.step_counts(16) == [1, 2, 4, 8, 16]


def test_accumulated_errors_separate_a_fixed_bias_from_noise():
    """measure_accumulated sums the updates of consecutive minibatches, random numbers running on as in
    training. At one step its rows are measure's, to the bit; over four steps the error of the unbiased
    sources (the per-pair shift) falls about as 1/sqrt(steps), while unshifted Sobol points, whose fixed-input
    bias is the same every step, keep most of theirs."""
    torch.manual_seed(0)
    model = models.build("resnet8")
    batches = _synthetic_batches(4)
    points = (fidelity.grid(["essop"], [16], ["per_pair"], ["shared"], ["lfsr", "sobol"], rng_shift=True)
              + fidelity.grid(["essop", "expected"], [16], ["per_pair"], ["shared"], ["sobol"]))
    rows = fidelity.measure_accumulated(model, batches, points, EssopConfig())
    layers = [name for name, _ in fidelity.essop_layers(model)]
    assert len(rows) == len(points) * len(layers) * 3 and {r["steps"] for r in rows} == {1, 2, 4}
    assert all(layer.essop_update is None and int(layer.essop_pairs) == 0 for _, layer in fidelity.essop_layers(model))
    one = fidelity.measure(model, batches[:1], points, EssopConfig())
    first = [r for r in rows if r["steps"] == 1]
    assert [(r["config"], r["layer"]) for r in first] == [(r["config"], r["layer"]) for r in one]
    for r, q in zip(first, one):
        assert all(r[k] == q[k] for k in ("cosine", "rel_err", "out_cosine", "out_rel_err")), (r, q)
    med = {(p.label, k): statistics.median(r["out_rel_err"] for r in rows
                                           if r["config"] == p.label and r["steps"] == k)
           for p in points for k in (1, 4)}
    ratio = {p.label: med[p.label, 4] / med[p.label, 1] for p in points}
    lfsr_shift, sobol_shift, sobol = (f"essop per_pair shared BL 16 {s}" for s in ("lfsr+shift", "sobol+shift", "sobol"))
    assert ratio[lfsr_shift] < 0.75 and ratio[sobol_shift] < 0.75        # about 1/sqrt(4)
    assert ratio[sobol] > max(ratio[lfsr_shift], ratio[sobol_shift]) + 0.15


def test_command_steps_writes_the_accumulated_table(tmp_path):
    data = write_batches(tmp_path / "b", n_train=32, n_test=8)
    parser = argparse.ArgumentParser()
    training_commands.add_arguments("fidelity", parser)
    common = ["--model", "resnet8", "--batch-size", "8", "--bl", "8", "--scaling", "per_pair", "--data", str(data),
              "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]
    args = parser.parse_args([*common, "--steps", "3", "--out", str(tmp_path / "acc")])
    assert training_commands.run("fidelity", args) == 0
    with open(tmp_path / "acc" / "accumulated.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["config"], r["steps"]) for r in rows} == {(c, s) for c in ("expected per_pair",
                                                                          "essop per_pair shared BL 8")
                                                         for s in ("1", "2", "3")}
    md = (tmp_path / "acc" / "accumulated.md").read_text()
    assert "| essop per_pair shared BL 8 |" in md and "k = 3 / k = 1" in md
    assert (tmp_path / "acc" / "accumulated.png").stat().st_size > 10_000
    res = subprocess.run([sys.executable, "-m", "essop.app", "fidelity", *common, "--steps", "2", "--batches", "2",
                          "--out", str(tmp_path / "both")], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "--steps" in lines[0], res.stderr
    assert not (tmp_path / "both").exists()


def test_every_minibatch_is_compared_with_its_fp32_gradient():
    """measure over two minibatches gives the second one's rows exactly as measuring it alone does: the layers
    hold the last configuration's update after the first minibatch, and the FP32 pass of the second must not
    use it (it did, until 2026-12-06: the second minibatch's reference was that configuration's gradient)."""
    torch.manual_seed(0)
    model = models.build("resnet8")
    batches = _synthetic_batches(2)
    points = fidelity.grid(["essop"], [8], ["per_pair"], ["shared"], ["lfsr", "sobol"])
    both = [r for r in fidelity.measure(model, batches, points, EssopConfig()) if r["batch"] == 1]
    alone = fidelity.measure(model, batches[1:], points, EssopConfig())
    assert len(both) == len(alone) == len(points) * len(fidelity.essop_layers(model))
    for r, q in zip(both, alone):
        assert all(r[k] == q[k] for k in ("config", "layer", "cosine", "rel_err", "out_cosine", "out_rel_err")), (r, q)


def test_proxy_vs_gap_script(tmp_path, capsys):
    """scripts/proxy_vs_gap.py: Spearman's coefficient with tied ranks, the campaign rows named as fidelity
    names them (seeds averaged, unfinished rows left out), and a missing file is one line and exit 2."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import proxy_vs_gap
    assert list(proxy_vs_gap.ranks([3.0, 1.0, 3.0, 2.0])) == [3.5, 1.0, 3.5, 2.0]
    assert proxy_vs_gap.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert proxy_vs_gap.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    rows = [("fp32", None, None, None, None, 0.0, "done"), ("expected", "per_pair", None, None, None, 0.1, "done"),
            ("essop", "per_pair", "shared", 8, "lfsr", -2.0, "done"), ("essop", "per_pair", "shared", 16, "lfsr", -1.0,
                                                                       "done"),
            ("essop", "per_pair", "shared", 16, "lfsr", -1.4, "done"),
            ("essop", "per_pair", "shared", 16, "sobol", -9.0, "partial")]
    table = {"rows": [dict(zip(("mode", "scaling", "sharing", "bl", "source", "gap_pp", "status"), r)) for r in rows]}
    (tmp_path / "table.json").write_text(json.dumps(table))
    cosines = {"expected per_pair": 0.99, "essop per_pair shared BL 8": 0.7, "essop per_pair shared BL 16": 0.8,
               "essop per_pair shared BL 16 sobol": 0.9}
    with open(tmp_path / "fid.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["config", "batch", "cosine", "out_cosine"])
        w.writeheader()
        for c, v in cosines.items():
            w.writerows([{"config": c, "batch": 0, "cosine": v, "out_cosine": v},
                         {"config": c, "batch": 1, "cosine": 0.0, "out_cosine": 0.0}])
    common = ["--table", str(tmp_path / "table.json"), "--fidelity", str(tmp_path / "fid.csv")]
    assert proxy_vs_gap.main(common) == 0
    out = capsys.readouterr().out
    assert "| essop per_pair shared BL 16 | -1.20 | 0.800 | 0.800 |" in out
    assert "sobol" not in out and "- one-step cosine: 1.00" in out
    assert proxy_vs_gap.main([*common, "--without", "expected per_pair"]) == 2     # two left: no ranking
    assert "2 finished configuration(s)" in capsys.readouterr().err
    assert proxy_vs_gap.main(["--table", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("proxy_vs_gap: error: ") and "missing.json" in err

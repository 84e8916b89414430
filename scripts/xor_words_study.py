"""What if the per-element LFSRs were one shared LFSR per side plus a constant XOR word per row and column?

Per-element generators (sharing="per_element") cost rows + cols LFSRs; what they buy, measured by `essop
fidelity`, is an error that moves the layers' outputs far less than the shared generators' (docs/fidelity.md):
with one random number per side and cycle, a pair's bits are thresholds of its magnitudes and the error
follows the data. A constant XOR word per row and column (inverters on each comparator's random input, no
flip-flops) also gives every element its own numbers. Sobol per_element is built that way already (one Sobol
generator, element k's digital shift essop.sobol_params.element_word(k, q)); this script asks the same of the
LFSR, with the training kernel itself: it runs `essop fidelity`'s measurement with the LFSR per_element
configuration, but every generator at offset 0 (the one shared sequence) and element k's word element_word(k, q)
XORed into its numbers. It is a what-if for the next hardware variant, not a configuration of the array (no
RTL, no golden model of it yet):

    python scripts/xor_words_study.py                     # ResNet-32 at initialisation, seed 0, BL 16 and 64
    python scripts/xor_words_study.py --checkpoint runs/accuracy/r32-e15/essop-per_element-bl16/model.pt

Prints one markdown row per configuration: medians over layers (and minibatches) of the weight-space and
output-space cosine and relative error to the FP32 gradient."""
from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import contextmanager

import torch

from essop.config import EssopConfig
from essop.sobol_params import element_word
from essop.training import counts, data as cdata, fidelity, models

LABEL = "lfsr shared + XOR words"


@contextmanager
def xor_words_instead_of_offsets():
    """While active, LFSR per_element configurations run as one shared sequence per side (every offset 0)
    with element k's constant word element_word(k, q) XORed into its numbers."""
    offsets, words = counts.generator_offsets, counts.generator_words

    def zero_offsets(cfg, side, device="cpu"):
        got = offsets(cfg, side, device)
        return torch.zeros_like(got) if cfg.rng == "lfsr" and cfg.sharing == "per_element" else got

    def element_words(cfg, side, device="cpu"):
        if cfg.rng == "lfsr" and cfg.sharing == "per_element":
            count = cfg.cols if side == "x" else cfg.rows
            return torch.tensor([element_word(k, cfg.q) for k in range(count)], dtype=torch.int64, device=device)
        return words(cfg, side, device)

    counts.generator_offsets, counts.generator_words = zero_offsets, element_words
    try:
        yield
    finally:
        counts.generator_offsets, counts.generator_words = offsets, words


def study(model, batches, bls, base: EssopConfig) -> list[tuple[str, dict]]:
    """(label, medians) per configuration: shared, per_element and shared + XOR words at every BL."""
    out = []
    for bl in bls:
        points = fidelity.grid(["essop"], [bl], ["per_pair"], ["shared", "per_element"])
        rows = fidelity.measure(model, batches, points, base)
        with xor_words_instead_of_offsets():
            what_if = fidelity.measure(model, batches, points[1:], base)
        for label, rs in ((points[0].label, [r for r in rows if r["config"] == points[0].label]),
                          (points[1].label, [r for r in rows if r["config"] == points[1].label]),
                          (f"essop per_pair {LABEL} BL {bl}", what_if)):
            out.append((label, {k: statistics.median(r[k] for r in rs)
                                for k in ("cosine", "rel_err", "out_cosine", "out_rel_err")}))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bl", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--checkpoint", help="weights (model.pt or checkpoint.pt) instead of the initial network")
    ap.add_argument("--batches", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="resnet32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", help="CIFAR-10 JPEG zip or cifar-10-batches-py folder (default: the usual search)")
    ap.add_argument("--cache-dir", help="where the decoded CIFAR-10 .npz is kept (default ~/.cache/essop)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        for bl in args.bl:
            EssopConfig(bl=bl)
        torch.manual_seed(args.seed)
        model = models.build(args.model)
        if args.checkpoint:
            state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
        model.train()
        ds = cdata.load_cifar10(args.data, args.cache_dir)
    except (ValueError, OSError, RuntimeError, KeyError) as exc:
        print(f"xor_words_study: error: {exc}", file=sys.stderr)
        return 2
    norm = cdata.Normaliser(ds.x_train)
    order = cdata.epoch_order(len(ds.x_train), args.seed, 0)
    batches = []
    for b in range(args.batches):
        idx = order[b * args.batch_size:(b + 1) * args.batch_size]
        x = cdata.augment(torch.from_numpy(ds.x_train[idx]), cdata.step_generator(args.seed, 0, b))
        batches.append((norm(x), torch.from_numpy(ds.y_train[idx])))
    print("| configuration | median cosine | median rel. error | median output cosine | median output rel. error |")
    print("|---|---|---|---|---|")
    for label, m in study(model, batches, args.bl, EssopConfig()):
        print(f"| {label} | {m['cosine']:.3f} | {m['rel_err']:.3f} | {m['out_cosine']:.3f} | {m['out_rel_err']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

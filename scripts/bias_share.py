"""How large the random-number source's fixed-input bias is in a trained network's weight gradients
(training.fidelity.fixed_bias_share), layer by layer, on one batch of CIFAR-10 training images:

    python scripts/bias_share.py runs/accuracy/r32-e15/fp32-s0/model.pt            # the default LFSR pair
    python scripts/bias_share.py runs/accuracy/r32-e15/fp32-s0/model.pt --rng-shift

Prints a markdown table (layer, pairs, |G_bias| / |G_exp|, cos) and the median over layers."""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
import torch

from essop.config import EssopConfig
from essop.training import data as cdata, models
from essop.training.fidelity import fixed_bias_share


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="a model.pt (state dict) of an `essop train` run")
    ap.add_argument("--model", default="resnet32")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0, help="which training images (a random draw)")
    ap.add_argument("--bl", type=int, default=16)
    ap.add_argument("--scaling", default="per_pair")
    ap.add_argument("--rng", default="lfsr")
    ap.add_argument("--rng-shift", action="store_true")
    ap.add_argument("--data", help="CIFAR-10 JPEG zip or cifar-10-batches-py folder (default: the usual search)")
    ap.add_argument("--cache-dir", help="where the decoded CIFAR-10 .npz is kept (default ~/.cache/essop)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        cfg = EssopConfig(bl=args.bl, rng=args.rng, rng_shift=args.rng_shift)
        model = models.build(args.model)
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
        d = cdata.load_cifar10(args.data, args.cache_dir)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        print(f"bias_share: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    idx = np.random.default_rng(args.seed).permutation(len(d.x_train))[:args.batch_size]
    x = cdata.Normaliser(d.x_train)(torch.from_numpy(d.x_train[idx]))
    y = torch.from_numpy(d.y_train[idx])
    model.train()
    rows = fixed_bias_share(model, x, y, cfg, args.scaling)
    print(f"{cfg.name}, {args.scaling} scaling, {args.batch_size} training images (seed {args.seed}), {args.weights}")
    print("\n| layer | pairs | bias / gradient norm | cos(bias, gradient) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['layer']} | {r['pairs']} | {r['rel_bias']:.4f} | {r['cos_bias']:+.3f} |")
    print(f"\nmedian over {len(rows)} layers: bias / gradient norm "
          f"{statistics.median(r['rel_bias'] for r in rows):.4f}, cos {statistics.median(r['cos_bias'] for r in rows):+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`essop train` and `essop bench-train` (dispatched from essop/cli.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from essop.sim.options import add_config_arguments, config_from_args

#: Fields the harness sets per layer (each layer is its own virtual array: docs/training.md).
LAYER_FIELDS = ("rows", "cols", "acc_depth", "scaling", "output_format")


def _positive(v: str) -> int:
    i = int(v)
    if i < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v!r}")
    return i


def _add_run_environment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="CIFAR-10 JPEG zip or cifar-10-batches-py folder "
                                       "(default $ESSOP_CIFAR10, else ../shared/data/cifar10-jpeg.zip)")
    parser.add_argument("--cache-dir", help="where the decoded uint8 .npz is kept (default ~/.cache/essop)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=_positive, help="torch CPU threads")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "train":
        parser.add_argument("--mode", choices=("fp32", "essop", "expected"), default="essop")
        parser.add_argument("--epochs", type=_positive, default=None,
                            help="epochs (default 160; `make train` protocol: see docs/training.md)")
        parser.add_argument("--batch-size", type=_positive, default=128)
        parser.add_argument("--lr", type=float, default=0.1, help="(peak) learning rate (default 0.1)")
        parser.add_argument("--schedule", choices=("step", "cosine"), default="step",
                            help="step: lr/10 at 50 %% and 75 %% of the epochs (He et al.); cosine: linear warm-up "
                                 "over --warmup-epochs, then cosine decay to 0, per step (default step)")
        parser.add_argument("--warmup-epochs", type=float, default=0.0, help="warm-up of the cosine schedule")
        parser.add_argument("--weight-decay", type=float, default=1e-4, help="SGD weight decay (default 1e-4)")
        parser.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
        parser.add_argument("--scaling", choices=("per_pair", "block", "per_sample"), default="per_pair",
                            help="exponents of the ESSOP update: per_pair (each im2col pair, the array's "
                                 "default), block (one per layer and minibatch), per_sample (one per image)")
        parser.add_argument("--subset", type=_positive, help="train on the first N images of a fixed shuffle")
        parser.add_argument("--test-subset", type=_positive, help="evaluate on N test images of a fixed shuffle")
        parser.add_argument("--model", default="resnet32",
                            help="network: resnet8, resnet20, resnet32, resnet44 or resnet56 (default resnet32)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default=None, help="output folder (default runs/<mode>_bl<BL>_<sharing>)")
        parser.add_argument("--resume", nargs="?", const="yes", choices=("yes", "auto"), default="no",
                            help="continue the run in OUT from its checkpoint.pt (an error if there is none); "
                                 "`--resume auto` continues it if there is one and starts a fresh run otherwise")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace the run already in OUT (without this, an existing run folder is an error)")
        parser.add_argument("--stop-after-steps", type=_positive, help="stop (with a checkpoint) after N steps")
        parser.add_argument("--time-budget-s", type=float,
                            help="size the number of epochs from the first epoch's time to fit this budget")
        parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
        parser.add_argument("--quick", action="store_true",
                            help="the short `make train` protocol: 2 epochs on 2,000 images, 1,000 test images")
        _add_run_environment(parser)
        add_config_arguments(parser, skip=LAYER_FIELDS)
    elif name == "bench-train":
        parser.add_argument("--bl", type=_positive, nargs="+", default=[8, 16, 32, 64],
                            help="bitstream lengths to time (default 8 16 32 64)")
        parser.add_argument("--scaling", nargs="+", choices=("per_pair", "block", "per_sample"),
                            default=["per_pair", "block"], help="exponent scalings to time (default per_pair block)")
        parser.add_argument("--batch", type=_positive, default=128)
        parser.add_argument("--warmup", type=_positive, default=2)
        parser.add_argument("--steps", type=_positive, default=5)
        parser.add_argument("--expected", action="store_true", help="also time the expected mode")
        parser.add_argument("--json", help="also write the rows as JSON here")
        parser.add_argument("--profile", choices=("fp32", "essop", "expected"),
                            help="instead of the table, profile this mode at the first --bl and --scaling: "
                                 "PyTorch operators and the native kernel's phases")
        _add_run_environment(parser)
        add_config_arguments(parser, skip=LAYER_FIELDS + ("bl",))
    else:
        raise ValueError(f"unknown training subcommand {name!r}")


def run(name: str, args: argparse.Namespace) -> int:
    if name == "train":
        from essop.training.train import TrainOptions, train
        import torch.distributed as dist

        cfg = config_from_args(args, skip=LAYER_FIELDS)
        epochs, subset, test_subset = args.epochs, args.subset, args.test_subset
        if args.quick:
            epochs, subset, test_subset = epochs or 2, subset or 2000, test_subset or 1000
        out = args.out or f"runs/{args.mode}" + ("" if args.mode == "fp32" else f"_{args.scaling}_bl{cfg.bl}_{cfg.sharing}")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            import torch
            backend = "nccl" if args.device.startswith("cuda") else "gloo"
            dist.init_process_group(backend)
            if args.device.startswith("cuda"):
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
                args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        opts = TrainOptions(mode=args.mode, essop=cfg, epochs=epochs or 160, batch_size=args.batch_size,
                            lr=args.lr, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                            weight_decay=args.weight_decay, nesterov=args.nesterov, scaling=args.scaling,
                            model=args.model, data=args.data, cache_dir=args.cache_dir,
                            subset=subset, test_subset=test_subset, threads=args.threads, seed=args.seed,
                            device=args.device, out=out, resume=args.resume, overwrite=args.overwrite, stop_after_steps=args.stop_after_steps,
                            time_budget_s=args.time_budget_s, progress=not args.no_progress)
        try:
            summary = train(opts)
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
        print(json.dumps(summary, indent=2))
        return 0
    if name == "bench-train":
        from essop.training.bench import bench, profile, table
        cfg = config_from_args(args, skip=LAYER_FIELDS + ("bl",))
        if args.profile:
            print(profile(args.profile, args.scaling[0], cfg.replace(bl=args.bl[0]), args.batch, args.steps,
                          args.device, args.threads, args.data, args.cache_dir))
            return 0
        rows = bench(args.bl, args.scaling, cfg, args.batch, args.warmup, args.steps, args.device, args.threads,
                     args.data, args.cache_dir, args.expected)
        print(table(rows))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0
    raise ValueError(f"unknown training subcommand {name!r}")

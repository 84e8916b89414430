"""`essop train`, `essop bench-train`, `essop fidelity`, `essop campaign`, `essop evaluate` and `essop faults`
(dispatched by essop.app.cli): options, and calls into essop.training (training runs, the step benchmark,
gradient fidelity, accuracy campaigns, evaluation of a run's weights), which does the work. PyTorch is imported
only by the command that runs."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from essop.app.options import add_config_arguments, config_from_args

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
    from essop.training.layers import MODES, SCALINGS     # PyTorch comes with them: training commands need it
    if name == "train":
        parser.add_argument("--mode", choices=MODES, default="essop")
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
        parser.add_argument("--scaling", choices=SCALINGS, default="per_pair",
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
        parser.add_argument("--scaling", nargs="+", choices=SCALINGS,
                            default=["per_pair", "block"], help="exponent scalings to time (default per_pair block)")
        parser.add_argument("--batch", type=_positive, default=128)
        parser.add_argument("--warmup", type=_positive, default=2)
        parser.add_argument("--steps", type=_positive, default=5)
        parser.add_argument("--expected", action="store_true", help="also time the expected mode")
        parser.add_argument("--json", help="also write the rows as JSON here")
        parser.add_argument("--profile", choices=MODES,
                            help="instead of the table, profile this mode at the first --bl and --scaling: "
                                 "PyTorch operators and the native kernel's phases")
        _add_run_environment(parser)
        add_config_arguments(parser, skip=LAYER_FIELDS + ("bl",))
    elif name == "fidelity":
        _fidelity_arguments(parser)
    elif name == "faults":
        _faults_arguments(parser)
    elif name == "campaign":
        _campaign_arguments(parser)
    elif name == "evaluate":
        _evaluate_arguments(parser)
    else:
        raise ValueError(f"unknown training subcommand {name!r}")


def run(name: str, args: argparse.Namespace) -> int:
    if name == "train":
        from essop.training.train import train
        import torch.distributed as dist

        cfg = config_from_args(args, skip=LAYER_FIELDS)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            import torch
            backend = "nccl" if args.device.startswith("cuda") else "gloo"
            dist.init_process_group(backend)
            if args.device.startswith("cuda"):
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
                args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        opts = train_options(args, cfg)
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
    if name == "fidelity":
        return _fidelity(args)
    if name == "campaign":
        return _campaign(args)
    if name == "evaluate":
        return _evaluate(args)
    if name == "faults":
        return _faults(args)
    raise ValueError(f"unknown training subcommand {name!r}")


# ---- essop fidelity --------------------------------------------------------------------------------------
def _fidelity_arguments(parser: argparse.ArgumentParser) -> None:
    from essop.training.layers import MODES, SCALINGS
    parser.add_argument("--modes", nargs="+", choices=[m for m in MODES if m != "fp32"], default=["essop", "expected"])
    parser.add_argument("--bl", type=_positive, nargs="+", default=[8, 16, 64], help="default 8 16 64")
    parser.add_argument("--scaling", nargs="+", choices=SCALINGS,
                        default=["per_pair", "block"], help="default per_pair block")
    parser.add_argument("--sharing", nargs="+", choices=("shared", "per_element"), default=["shared"])
    parser.add_argument("--rng", nargs="+", choices=("lfsr", "sobol"), default=["lfsr"],
                        help="random-number sources (default lfsr; the per-pair shift is --rng-shift)")
    parser.add_argument("--element-words", action="store_true",
                        help="each LFSR per_element point also with element words (one LFSR per side, a constant "
                             "XOR word per element: EssopConfig.element_words)")
    parser.add_argument("--protocol", type=Path, metavar="PROTOCOL.json",
                        help="instead of the grid of --modes/--bl/--scaling/--sharing/--rng: every ESSOP and "
                             "expected configuration of this accuracy protocol's rows, once each (its network "
                             "unless --model is given); the fidelity proxy of each row of the campaign")
    parser.add_argument("--batches", type=_positive, default=1, help="minibatches to average over (default 1)")
    parser.add_argument("--steps", type=_positive, default=1,
                        help="instead of one-step errors: sum the updates of this many consecutive minibatches "
                             "(weights held, random numbers running on as in training) and compare the sum with "
                             "the FP32 gradients' at 1, 2, 4, ... steps: a fixed error stays where noise averages "
                             "out (accumulated.csv/.md/.png; training.fidelity.measure_accumulated)")
    parser.add_argument("--batch-size", type=_positive, default=128)
    parser.add_argument("--model", help="network (default resnet32, or the --protocol's)")
    parser.add_argument("--checkpoint", help="weights from an `essop train` checkpoint.pt or model.pt "
                                             "(default: the network at initialisation, seed --seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/fidelity", help="output folder (default results/fidelity)")
    _add_run_environment(parser)
    add_config_arguments(parser, skip=LAYER_FIELDS + ("bl", "sharing", "rng", "element_words"))


def _fidelity(args: argparse.Namespace) -> int:
    import torch

    from essop.training import data as cdata, models
    from essop.training import fidelity
    from essop.training.fidelity import FIELDS, grid, markdown, measure, plot
    base = config_from_args(args, skip=LAYER_FIELDS + ("bl", "sharing", "rng", "element_words"))
    if args.steps > 1 and args.batches > 1:
        raise ValueError("--steps sums the updates of consecutive minibatches, --batches averages one-step errors "
                         "over several: give one of them")
    for bl in args.bl:
        base.replace(bl=bl)                  # an invalid BL fails here, before any work
    if args.protocol:
        points, model_name = _protocol_points(args.protocol, base)
        args.model = args.model or model_name
    else:
        points = grid(args.modes, args.bl, args.scaling, args.sharing, args.rng, base.rng_shift,
                      args.element_words)
    args.model = args.model or "resnet32"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = models.build(args.model)
    title = f"{args.model} at initialisation (seed {args.seed})"
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
        title = f"{args.model} from {args.checkpoint}"
    model.train()
    ds = cdata.load_cifar10(args.data, args.cache_dir)
    norm = cdata.Normaliser(ds.x_train)
    order = cdata.epoch_order(len(ds.x_train), args.seed, 0)
    batches = []
    for b in range(max(args.batches, args.steps)):
        idx = order[b * args.batch_size:(b + 1) * args.batch_size]
        x = cdata.augment(torch.from_numpy(ds.x_train[idx]), cdata.step_generator(args.seed, 0, b))
        batches.append((norm(x), torch.from_numpy(ds.y_train[idx])))
    t0 = time.perf_counter()

    def progress(p, b):
        print(f"  {p.label} (minibatch {b}): {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    out = Path(args.out)
    if args.steps > 1:
        rows = fidelity.measure_accumulated(model, batches, points, base, progress)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "accumulated.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fidelity.ACCUMULATED_FIELDS)
            w.writeheader()
            w.writerows(rows)
        title += (f"; the updates of {args.steps} consecutive minibatches of {args.batch_size} summed, weights "
                  f"held; q {base.q}, LFSR width {base.lfsr_width}")
        text = fidelity.markdown_accumulated(rows, title)
        (out / "accumulated.md").write_text(text + "\n")
        fidelity.plot_accumulated(rows, out / "accumulated.png", title)
        print(text)
        print(f"\nwrote {out / 'accumulated.csv'}, {out / 'accumulated.md'}, {out / 'accumulated.png'} "
              f"({time.perf_counter() - t0:.0f} s)")
        return 0
    rows = measure(model, batches, points, base, progress)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "fidelity.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    title += f"; {args.batches} minibatch(es) of {args.batch_size}; q {base.q}, LFSR width {base.lfsr_width}"
    if args.protocol:
        title += f"; the configurations of {args.protocol}"
    elif base.rng_shift:
        title += ", per-pair shift"
    text = markdown(rows, title)
    (out / "fidelity.md").write_text(text + "\n")
    (out / "fidelity.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "fidelity.png", title)
    print(text.split("\n\nCosine per layer")[0])
    print(f"\nwrote {out / 'fidelity.csv'}, {out / 'fidelity.md'}, {out / 'fidelity.png'} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def _protocol_points(path: Path, base):
    """The fidelity points of an accuracy protocol's rows (each row read by `essop train`'s own parser, as
    the campaign reads it: campaign.plan_rows) and the network they train."""
    from essop.training import campaign
    from essop.training.fidelity import protocol_points

    plans = campaign.plan_rows(campaign.load_protocol(path), Path("runs"), Path("docs"), {}, parse_train)
    rows = [(plan.name, plan.mode, plan.scaling, plan.essop) for plan in plans]
    networks = {plan.model for plan in plans}
    if len(networks) > 1:
        raise ValueError(f"{path}: the rows train different networks ({', '.join(sorted(networks))}); "
                         f"give --model")
    try:
        return protocol_points(rows, base), networks.pop()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# ---- essop faults ----------------------------------------------------------------------------------------
def _rate(v: str) -> float:
    try:
        r = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a rate must be a number in [0, 1], not {v!r}") from None
    if not 0 <= r <= 1:
        raise argparse.ArgumentTypeError(f"a rate must be a number in [0, 1], not {v!r}")
    return r


def _faults_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rates", type=_rate, nargs="+", default=[0.0, 1e-6, 1e-5, 1e-4],
                        help="bit-flip probabilities per bit and opportunity (default 0 1e-6 1e-5 1e-4)")
    parser.add_argument("--sites", nargs="+", choices=("inputs", "lfsr", "comparators", "counters"),
                        default=["inputs", "lfsr", "comparators", "counters"], help="where ESSOP bits flip")
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch-size", type=_positive, default=64)
    parser.add_argument("--subset", type=_positive, default=1000, help="training images (default 1000)")
    parser.add_argument("--test-subset", type=_positive, default=500, help="test images (default 500)")
    parser.add_argument("--epochs", type=_positive, default=3)
    parser.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the cosine schedule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-training", action="store_true", help="gradient fidelity only")
    parser.add_argument("--out", default="results/faults", help="output folder (default results/faults)")
    _add_run_environment(parser)
    add_config_arguments(parser, skip=LAYER_FIELDS)


def _faults(args: argparse.Namespace) -> int:
    import torch

    from essop.training import fault_study
    from essop.training.faults import check_supported
    from essop.golden.faults import FaultPlan
    if args.device != "cpu":
        raise ValueError(f"essop faults runs on the CPU (the torch kernel with faults), not device {args.device!r}")
    cfg = config_from_args(args, skip=LAYER_FIELDS)
    check_supported(cfg, FaultPlan())
    from essop.training import models
    if args.model not in models.MODELS:
        models.build(args.model)           # the registry's own message names the choices
    torch.set_num_threads(args.threads or 1)
    opts = fault_study.StudyOptions(rates=tuple(args.rates), sites=tuple(args.sites), model=args.model, cfg=cfg,
                                    batch_size=args.batch_size, subset=args.subset, test_subset=args.test_subset,
                                    epochs=args.epochs, lr=args.lr, seed=args.seed, data=args.data,
                                    cache_dir=args.cache_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def say(text):
        print(f"  {text} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    fid = fault_study.fidelity_rows(opts, say)
    train_rows = [] if args.no_training else fault_study.training_rows(opts, say)
    for name, rows in (("faults_fidelity.csv", fid), ("faults_training.csv", train_rows)):
        if rows:
            with open(out / name, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
    text = fault_study.markdown(opts, fid, train_rows)
    (out / "faults.md").write_text(text + "\n")
    fault_study.plot(opts, fid, train_rows, out / "faults.png")
    print(text)
    print(f"\nwrote {out / 'faults.md'}, {out / 'faults.png'} and the CSVs ({time.perf_counter() - t0:.0f} s)")
    return 0


# ---- essop evaluate --------------------------------------------------------------------------------------
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from essop.training.evaluation import DEFAULT_BN_IMAGES
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="`essop train` run folder(s)")
    parser.add_argument("--bn-images", type=_positive, default=DEFAULT_BN_IMAGES,
                        help=f"training images (augmented as in training) the BatchNorm statistics are recomputed on "
                             f"(default {DEFAULT_BN_IMAGES})")
    _add_run_environment(parser)


def _evaluate(args: argparse.Namespace) -> int:
    from essop.training.evaluation import EVAL_FILE, evaluate_run
    for folder in args.runs:
        ev = evaluate_run(folder, args.bn_images, args.device, args.threads, args.data, args.cache_dir)
        where = f"epoch {ev.epoch}" + (f", step {ev.step}" if ev.step else "")
        print(f"{folder} ({ev.weights}, {where}): test {100 * ev.test_acc:.2f} % with its running BatchNorm "
              f"statistics, {100 * ev.bn_test_acc:.2f} % with statistics recomputed on {ev.bn_images} training "
              f"images ({ev.test_images} test images, {ev.seconds:.0f} s); {folder / EVAL_FILE}")
    return 0


# ---- essop campaign --------------------------------------------------------------------------------------
def _campaign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", type=Path, metavar="PROTOCOL.json", help="the accuracy protocol to run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/accuracy"),
                        help="run folders go to RUNS_DIR/NAME/ROW (checkpoints: not for committing; "
                             "default runs/accuracy)")
    parser.add_argument("--report-dir", type=Path, default=Path("docs/accuracy"),
                        help="the report goes to REPORT_DIR/NAME (small files, for committing; default docs/accuracy)")
    parser.add_argument("--rows", nargs="+", metavar="NAME",
                        help="run only these rows, in this order (the report covers all)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print every row's status, progress and `essop train` command; run nothing")
    parser.add_argument("--parallel", type=_positive, metavar="N",
                        help="run up to N rows at once (default: 1, or every row with --device cuda)")
    parser.add_argument("--background", action="store_true",
                        help="run detached, output in RUNS_DIR/NAME/campaign.log; print the pid and return")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report")
    env = parser.add_argument_group("passed to every row's `essop train` (over the protocol's values)")
    env.add_argument("--device", help="cpu or cuda")
    env.add_argument("--threads", type=_positive, help="torch CPU threads per row")
    env.add_argument("--data", help="CIFAR-10 JPEG zip or cifar-10-batches-py folder")
    env.add_argument("--cache-dir", help="where the decoded CIFAR-10 .npz is kept")


class _RaisingParser(argparse.ArgumentParser):
    """An ArgumentParser that raises ValueError instead of printing its usage and exiting, so that a bad
    option in a protocol is reported like every other protocol error: one line, naming the row."""

    def error(self, message):
        raise ValueError(message)


def train_options(args: argparse.Namespace, cfg):
    """The TrainOptions of an `essop train` command line (its namespace and EssopConfig)."""
    from essop.training.train import TrainOptions

    epochs, subset, test_subset = args.epochs, args.subset, args.test_subset
    if args.quick:
        epochs, subset, test_subset = epochs or 2, subset or 2000, test_subset or 1000
    out = args.out or f"runs/{args.mode}" + ("" if args.mode == "fp32" else f"_{args.scaling}_bl{cfg.bl}_{cfg.sharing}")
    return TrainOptions(mode=args.mode, essop=cfg, epochs=epochs or 160, batch_size=args.batch_size,
                        lr=args.lr, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                        weight_decay=args.weight_decay, nesterov=args.nesterov, scaling=args.scaling,
                        model=args.model, data=args.data, cache_dir=args.cache_dir,
                        subset=subset, test_subset=test_subset, threads=args.threads, seed=args.seed,
                        device=args.device, out=out, resume=args.resume, overwrite=args.overwrite,
                        stop_after_steps=args.stop_after_steps, time_budget_s=args.time_budget_s,
                        progress=not args.no_progress)


def parse_train(argv: list[str]):
    """`essop train`'s namespace and TrainOptions for `argv` (the arguments after `essop train`), or
    ValueError/TypeError: how a campaign checks and reads each row of a protocol."""
    parser = _RaisingParser(prog="essop train", allow_abbrev=False)    # keys must be whole flag names
    add_arguments("train", parser)
    args = parser.parse_args(argv)
    return args, train_options(args, config_from_args(args, skip=LAYER_FIELDS))


def _campaign_argv(args: argparse.Namespace) -> list[str]:
    """This campaign's command line without --background: what the detached copy runs."""
    from essop.training.campaign import ENVIRONMENT
    argv = [str(args.protocol), "--runs-dir", str(args.runs_dir), "--report-dir", str(args.report_dir)]
    if args.rows:
        argv += ["--rows", *args.rows]
    for flag in ("parallel", *ENVIRONMENT):
        value = getattr(args, flag.replace("-", "_"))
        if value is not None:
            argv += ["--" + flag, str(value)]
    return argv


def _campaign(args: argparse.Namespace) -> int:
    from essop.training import campaign

    if args.background and (args.dry_run or args.report_only):
        raise ValueError("--background runs rows; it does not go with --dry-run or --report-only")
    protocol = campaign.load_protocol(args.protocol)
    environment = {key: str(value) for key in campaign.ENVIRONMENT
                   if (value := getattr(args, key.replace("-", "_"))) is not None}
    plans = campaign.plan_rows(protocol, args.runs_dir, args.report_dir, environment, parse_train)
    selected = campaign.select_rows(plans, args.rows, args.protocol)

    def report() -> Path:
        return campaign.write_report(protocol, plans, args.report_dir)

    if args.report_only:
        print(f"report {report()}")
        return 0
    if args.dry_run:
        campaign.print_plan(selected)
        return 0
    if args.background:
        return campaign.launch_detached(protocol, args.runs_dir, _campaign_argv(args))
    # A GPU has room for every row at once; CPU rows share the cores, so one at a time unless told.
    parallel = args.parallel or (len(selected) if (args.device or "").startswith("cuda") else 1)
    return campaign.run_campaign(protocol, selected, args.runs_dir, parallel, report)

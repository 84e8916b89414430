"""`essop synth` and `essop fpga` (dispatched by essop.app.cli): options, and calls into essop.synth (the
Yosys + OpenSTA flow, the comparison tables, the FPGA builds)."""
from __future__ import annotations

import argparse
import datetime
import platform as _platform
import sys
import time
from pathlib import Path

from essop.app.options import add_config_arguments, config_from_args
from essop.config import SHARING_MODES
from essop.synth.flow import LIBRARIES, library, sta_version, yosys_version

__all__ = ["add_arguments", "run"]

#: EssopConfig fields `essop synth` sweeps with options of its own (several values each; cols follows rows).
SYNTH_AXES = ("rows", "cols", "bl", "sharing")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "synth":
        parser.add_argument("--lib", default="nangate15",
                            help=f"cell library: {', '.join(LIBRARIES)} (default nangate15)")
        parser.add_argument("--rows", type=int, nargs="+", default=[16],
                            help="array rows m (several: an array-size sweep, square arrays rows=cols)")
        parser.add_argument("--cols", type=int, default=None, help="array columns n (default: = rows)")
        parser.add_argument("--bl", type=int, nargs="+", default=[16], help="bitstream length(s) BL")
        parser.add_argument("--sharing", nargs="+", default=list(SHARING_MODES), choices=SHARING_MODES,
                            help="random-number sharing mode(s) (default: both)")
        parser.add_argument("--stages", type=int, nargs="+", default=[6],
                            help="FP16 multiplier pipeline stages (0 = combinational; the first is the "
                                 "baseline of the comparison table)")
        parser.add_argument("--fp16-outer", type=int, default=2, metavar="N",
                            help="also synthesise an N x N FP16 outer-product array (0: skip) to check that "
                                 "its area is N*N multipliers")
        parser.add_argument("--out", type=Path, default=Path("results/synth"), help="output folder")
        parser.add_argument("--build", type=Path, default=Path("build/synth"), help="build folder")
        # Every other EssopConfig field (q, acc_depth, scaling, output_format, the LFSR fields, lr_shift, ...).
        add_config_arguments(parser, skip=SYNTH_AXES)
    elif name == "fpga":
        from essop.synth.fpga import BOARDS
        parser.add_argument("--board", default="ulx3s-85f", help=f"board: {', '.join(BOARDS)}")
        parser.add_argument("--rows", type=int, default=4)
        parser.add_argument("--cols", type=int, default=4)
        parser.add_argument("--bl", type=int, default=16)
        parser.add_argument("--sharing", default="shared", choices=SHARING_MODES)
        parser.add_argument("--stages", type=int, default=3, help="FP16 multiplier pipeline stages")
        parser.add_argument("--fp16-outer", type=int, default=1, metavar="N",
                            help="FP16 baseline: an N x N outer-product array (1: one multiplier)")
        parser.add_argument("--out", type=Path, default=Path("results/fpga"))
        parser.add_argument("--build", type=Path, default=Path("build/fpga"))
    else:
        raise ValueError(f"essop.app.synth_commands has no subcommand {name!r}")


def _git_commit() -> str:
    import subprocess
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "hdl", "synth"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (hdl/ or synth/ modified)" if dirty else "")


def _meta(extra: dict) -> dict:
    return {
        "git_commit": _git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "essop " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("essop") else " ".join(sys.argv),
        "machine": f"{_platform.system()} {_platform.machine()}, {_platform.node()}",
        **extra,
    }


def _synth(args) -> int:
    from essop.synth import compare

    try:
        lib = library(args.lib)
    except ValueError as e:
        print(f"essop synth: {e}", file=sys.stderr)
        return 2
    base = config_from_args(args, skip=SYNTH_AXES)
    # Every ESSOP point, validated before any synthesis starts (a bad value fails here, in one line).
    points = [base.replace(rows=m, cols=args.cols if args.cols is not None else m, bl=bl, sharing=sharing)
              for sharing in args.sharing for m in args.rows for bl in args.bl]
    t0 = time.time()
    rows: list[dict] = []
    for stages in args.stages:
        r = compare.fp16_row(stages, lib.name, args.build)
        print(f"fp16_mul stages={stages}: {r['area_um2']:.1f} um^2, {r['fmax_ghz']:.3f} GHz, "
              f"{r['energy_per_product_fj']:.1f} fJ/product", flush=True)
        rows.append(r)
    if args.fp16_outer:
        r = compare.fp16_outer_row(args.fp16_outer, args.fp16_outer, args.stages[0], lib.name, args.build)
        print(f"fp16_outer {args.fp16_outer}x{args.fp16_outer}: {r['area_um2']:.1f} um^2 "
              f"({r['area_per_product_unit_um2']:.1f} per product)", flush=True)
        rows.append(r)
    for cfg in points:
        r = compare.essop_row(cfg, lib.name, args.build)
        print(f"essop {cfg.rows}x{cfg.cols} BL{cfg.bl} {cfg.sharing} {cfg.rng}{'+shift' if cfg.rng_shift else ''}: "
              f"{r['area_um2']:.1f} um^2 "
              f"(cells {r['cells_area_um2']:.1f}, periphery {r['periphery_area_um2']:.1f}), {r['fmax_ghz']:.3f} GHz, "
              f"{r['energy_per_product_fj']:.2f} fJ/product", flush=True)
        rows.append(r)
    base = next(r for r in rows if r["design"] == "fp16_mul")
    comps = [compare.comparison(r, base) for r in rows if r["design"] == "essop"]
    meta = _meta({"library": lib.name, "library_node": lib.node, "yosys": yosys_version(),
                  "opensta": sta_version(), "runtime_s": round(time.time() - t0, 1)})
    text = compare.write_tables(args.out, rows, comps, meta)
    compare.plot(args.out, rows)
    print(text)
    print(f"wrote {args.out}/synth.csv, synth.md, comparison.csv, synth.png")
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    if name == "synth":
        return _synth(args)
    if name == "fpga":
        from essop.synth.fpga import run_fpga
        return run_fpga(args)
    raise ValueError(f"essop.app.synth_commands has no subcommand {name!r}")

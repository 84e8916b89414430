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
from essop.app.tasks import CachedTask, add_task_arguments, code_fingerprint, run_tasks
from essop.config import SHARING_MODES
from essop.synth.libraries import LIBRARIES, library
from essop.synth.sta import sta_version
from essop.synth.yosys import YOSYS_VERSION, yosys_version

__all__ = ["add_arguments", "run", "synth_tasks"]

#: EssopConfig fields `essop synth` sweeps with options of its own (several values each; cols follows rows).
SYNTH_AXES = ("rows", "cols", "bl", "sharing")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "synth":
        parser.add_argument("--lib", nargs="+", default=["nangate15"],
                            help=f"cell library or libraries: {', '.join(LIBRARIES)} (default nangate15; several: "
                                 f"one table, each ESSOP row compared with its own library's baseline)")
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
        parser.add_argument("--build", type=Path, default=Path("build/synth"),
                            help="build folder: one subfolder per configuration, with its cached result")
        add_task_arguments(parser)
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


def synth_tasks(libs: list, points: list, stages: list[int], fp16_outer: int, build: Path) -> list[CachedTask]:
    """The configurations of one `essop synth` run, each a task with its own build folder: per library, the
    FP16 multipliers, the FP16 outer-product check, then the ESSOP arrays (the order of the table)."""
    import essop
    import essop.golden
    import essop.hdl
    import essop.synth
    from essop.synth import compare

    # The packages a row is computed by: a change to their code recomputes the cached rows.
    code = code_fingerprint([essop, essop.hdl, essop.golden, essop.synth])
    tasks = []
    for lib in libs:
        # What a row depends on beyond its parameters: the code, the library's files, the tools.
        common = {"code": code, "lib": lib.name, "lib_files": _file_stamps(lib), "yosys": YOSYS_VERSION}
        for s in stages:
            tasks.append(CachedTask(compare.fp16_row, (s, lib.name, str(build)),
                                    str(build / f"{lib.name}_fp16_mul_s{s}"),
                                    common | {"design": "fp16_mul", "stages": s}, f"fp16_mul stages={s}"))
        if fp16_outer:
            n, s = fp16_outer, stages[0]
            tasks.append(CachedTask(compare.fp16_outer_row, (n, n, s, lib.name, str(build)),
                                    str(build / f"{lib.name}_fp16_outer_{n}x{n}_s{s}"),
                                    common | {"design": "fp16_outer", "n": n, "stages": s}, f"fp16_outer {n}x{n}"))
        for cfg in points:
            tasks.append(CachedTask(compare.essop_row, (cfg, lib.name, str(build)),
                                    str(build / f"{lib.name}_{cfg.name}"),
                                    common | {"design": "essop", "config": cfg.to_dict()}, f"essop {cfg.name}"))
    return tasks


def _file_stamps(lib) -> list:
    """Name, size and modification time of each Liberty file (ESSOP_PDK may point at other files)."""
    return [[str(p), p.stat().st_size, int(p.stat().st_mtime)] for p in lib.paths() if p.exists()]


def _progress_line(r: dict) -> str:
    if r["design"] == "fp16_mul":
        return (f"fp16_mul stages={r['stages']}: {r['area_um2']:.1f} um^2, {r['fmax_ghz']:.3f} GHz, "
                f"{r['energy_per_product_fj']:.1f} fJ/product")
    if r["design"] == "fp16_outer":
        return (f"fp16_outer {r['rows']}x{r['cols']}: {r['area_um2']:.1f} um^2 "
                f"({r['area_per_product_unit_um2']:.1f} per product)")
    return (f"essop {r['rows']}x{r['cols']} BL{r['bl']} {r['sharing']} {r['rng']}: {r['area_um2']:.1f} um^2 "
            f"(cells {r['cells_area_um2']:.1f}, periphery {r['periphery_area_um2']:.1f}), {r['fmax_ghz']:.3f} GHz, "
            f"{r['energy_per_product_fj']:.2f} fJ/product")


def _synth(args) -> int:
    from essop.synth import compare, report

    try:
        libs = [library(name) for name in args.lib]
    except ValueError as e:
        print(f"essop synth: {e}", file=sys.stderr)
        return 2
    base = config_from_args(args, skip=SYNTH_AXES + ("element_words",))
    # Element words are a way to build per_element generators: they go with that sharing mode's points.
    words = bool(args.element_words)
    if words and "per_element" not in args.sharing:
        raise ValueError("--element-words builds per_element generators: give --sharing per_element")
    # Every ESSOP point, validated before any synthesis starts (a bad value fails here, in one line).
    points = [base.replace(rows=m, cols=args.cols if args.cols is not None else m, bl=bl, sharing=sharing,
                           element_words=words and sharing == "per_element")
              for sharing in args.sharing for m in args.rows for bl in args.bl]
    t0 = time.time()
    tasks = synth_tasks(libs, points, args.stages, args.fp16_outer, args.build)
    several = len(libs) > 1

    def done(task, row, cached):
        print((f"[{row['library']}] " if several else "") + _progress_line(row), flush=True)

    finished = []
    try:
        results = run_tasks(tasks, workers=args.workers, ray_address=args.ray_address,
                            done=lambda task, row, cached: (finished.append(task), done(task, row, cached)))
    except KeyboardInterrupt:
        print(f"essop synth: stopped after {len(finished)} of {len(tasks)} configurations; their results are in "
              f"{args.build}, and the same command again computes only the others", file=sys.stderr)
        return 130
    rows = [row for row, _ in results]
    comps = []
    for lib in libs:
        mine = [r for r in rows if r["library"] == lib.name]
        base_row = next(r for r in mine if r["design"] == "fp16_mul")
        comps += [compare.comparison(r, base_row) for r in mine if r["design"] == "essop"]
    extra = ({"library": lib.name, "library_node": lib.node} if not several else
             {"libraries": [lib.name for lib in libs], "library_nodes": [lib.node for lib in libs]})
    meta = _meta(extra | {"yosys": yosys_version(), "opensta": sta_version(),
                          "runtime_s": round(time.time() - t0, 1)})
    if any(cached for _, cached in results):
        meta["cached_rows"] = sum(cached for _, cached in results)
    text = report.write_tables(args.out, rows, comps, meta)
    pictures = []
    for lib in libs:
        name = f"synth_{lib.name}.png" if several else "synth.png"
        if report.plot(args.out, [r for r in rows if r["library"] == lib.name], name):
            pictures.append(name)
    print(text)
    print(f"wrote {args.out}/synth.csv, synth.md, comparison.csv, {', '.join(pictures)}")
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    if name == "synth":
        return _synth(args)
    if name == "fpga":
        from essop.synth.fpga import run_fpga
        return run_fpga(args)
    raise ValueError(f"essop.app.synth_commands has no subcommand {name!r}")

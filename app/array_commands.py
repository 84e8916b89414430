"""`essop generate`, `essop verify`, `essop sweep`, `essop stats` (dispatched by essop.app.cli): options, and
calls into essop.sim (Verilog, cocotb), essop.golden.statistics (estimator statistics) and essop.app.sweep."""
from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

from essop.app.options import add_config_arguments, config_from_args


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "generate":
        add_config_arguments(parser)
        parser.add_argument("-o", "--output", type=Path, default=Path("build/essop.v"),
                            help="Verilog file to write; the configuration JSON goes beside it (same stem, "
                                 ".json) (default: build/essop.v)")
    elif name == "verify":
        add_config_arguments(parser)
        parser.add_argument("--simulators", nargs="+", default=["icarus", "verilator"],
                            choices=["icarus", "verilator"], help="simulators to run (default: both)")
        parser.add_argument("--pairs", type=int, default=64,
                            help="realistic vector pairs after the directed edge cases (default: 64)")
        parser.add_argument("--seed", type=int, default=None,
                            help="regression seed (default: $COCOTB_RANDOM_SEED or the fixed default)")
        parser.add_argument("--build-dir", type=Path, default=Path("build"),
                            help="where the Verilog and the simulator builds go (default: build)")
        parser.add_argument("--waves", action="store_true",
                            help="record a waveform per simulator (FST from Icarus, VCD from Verilator) and print "
                                 "its path; WAVES=1 in the environment does the same")
    elif name == "sweep":
        from essop.app.sweep import DEFAULT_LIBRARY, providers
        add_config_arguments(parser, skip=SWEEP_SKIP)
        parser.add_argument("--element-words", action="store_true",
                            help="each LFSR per_element point also with element words (one LFSR per side, a "
                                 "constant XOR word per element: EssopConfig.element_words)")
        parser.add_argument("--bl", nargs="+", type=int, default=[4, 8, 16, 32, 64],
                            help="bitstream lengths to sweep (default: 4 8 16 32 64); both sharing modes each")
        parser.add_argument("--rng", nargs="+", default=["lfsr"], metavar="SOURCE",
                            help="random-number sources to sweep, 'lfsr' and/or 'sobol' (default: lfsr); the "
                                 "per-pair shift is --rng-shift")
        parser.add_argument("--jobs", type=int, default=1, help="points run in parallel (default: 1)")
        from essop.app.tasks import add_task_arguments
        add_task_arguments(parser)
        parser.add_argument("--out", type=Path, default=Path("results/sweep"),
                            help="directory for sweep.csv, sweep.md, sweep.png (default: results/sweep)")
        parser.add_argument("--build-dir", type=Path, default=Path("build/sweep"))
        known = providers()
        parser.add_argument("--columns", nargs="+", default=None, metavar="PROVIDER",
                            help="column providers to run (default: the default ones); known: "
                                 + "; ".join(f"{p.name}{'' if p.default else ' (opt-in)'}: {p.help}"
                                             for p in known.values()))
        parser.add_argument("--simulator", default="icarus", choices=["icarus", "verilator"],
                            help="simulator of the per-point cocotb check (default: icarus)")
        parser.add_argument("--pairs", type=int, default=8,
                            help="realistic pairs per cocotb check, after the directed ones (default: 8)")
        parser.add_argument("--draws", type=int, default=300,
                            help="random draws per point for the estimator error (default: 300)")
        parser.add_argument("--seed", type=int, default=1, help="seed of every random draw (default: 1)")
        parser.add_argument("--lib", default=DEFAULT_LIBRARY,
                            help=f"cell library of the synth column (default: {DEFAULT_LIBRARY}; `essop synth "
                                 f"--help` lists them)")
        parser.add_argument("--cache-dir", default=None,
                            help="where the accuracy column keeps the decoded CIFAR-10 .npz (default: "
                                 "~/.cache/essop, as `essop train`)")
    elif name == "stats":
        from essop.golden.statistics import SOURCES
        add_config_arguments(parser, skip=STATS_SKIP)
        parser.add_argument("--bl", nargs="+", type=int, default=[4, 8, 16, 32, 64, 128, 256],
                            help="bitstream lengths of the BL table (default: 4 .. 256)")
        parser.add_argument("--sources", nargs="+", default=list(STATS_SOURCES), choices=list(SOURCES),
                            help="random-number sources of the BL and fixed-input bias tables, both sharing modes "
                                 f"each (lfsr+words: per_element only) (default: {' '.join(STATS_SOURCES)})")
        parser.add_argument("--bias-widths", nargs="*", type=int, default=[20], metavar="W",
                            help="wider LFSRs whose fixed-input bias the alternatives table adds (default: 20; "
                                 "24 takes minutes)")
        parser.add_argument("--draws", type=int, default=1000,
                            help="random draws (vector pairs or groups) per table cell (default: 1000)")
        parser.add_argument("--seed", type=int, default=2020, help="seed of every random draw (default: 2020)")
        parser.add_argument("--out", type=Path, default=Path("results/stats"),
                            help="directory for the tables, CSV and Markdown (default: results/stats)")
    else:
        raise ValueError(f"essop.app.array_commands has no subcommand {name!r}")


#: EssopConfig fields `essop sweep` sweeps itself (--bl, both sharing modes, --rng, --element-words).
SWEEP_SKIP = ("bl", "sharing", "rng", "element_words")
#: EssopConfig fields `essop stats` sweeps itself (--bl, both sharing modes, --sources).
STATS_SKIP = ("bl", "sharing", "rng", "rng_shift", "element_words")
STATS_SOURCES = ("lfsr", "lfsr+shift", "lfsr+words", "sobol", "sobol+shift")


def run(name: str, args: argparse.Namespace) -> int:
    skip = {"sweep": SWEEP_SKIP, "stats": STATS_SKIP}.get(name, ())
    try:
        cfg = config_from_args(args, skip=skip)
    except (TypeError, ValueError) as exc:
        print(f"essop {name}: error: {exc}", file=sys.stderr)
        return 2
    return {"generate": _generate, "verify": _verify, "sweep": _sweep, "stats": _stats}[name](cfg, args)


def _stamp() -> str:
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"{platform.machine()} {platform.system()}")


def _generate(cfg, args) -> int:
    from essop.hdl.ip import core_name, write_ip
    paths = write_ip(cfg, args.output)
    print(f"wrote {paths['verilog']} and {paths['config']} ({cfg.name}); FuseSoC core {paths['core']} "
          f"({core_name(cfg)}), file list {paths['filelist']}")
    return 0


def _verify(cfg, args) -> int:
    from essop.app import tables
    from essop.sim.runner import generate, run_cocotb

    v, j = generate(cfg, args.build_dir / "essop.v")
    print(f"configuration {cfg.name}: wrote {v} and {j}")
    results = []
    for sim in args.simulators:
        print(f"running the cocotb regression on {sim} ...", flush=True)
        results.append(run_cocotb(cfg, sim, args.build_dir / "cocotb", pairs=args.pairs, seed=args.seed,
                                  waves=args.waves))
    print()
    print(tables.markdown([r.as_row() for r in results]))
    for r in results:
        if r.waves:
            print(f"{r.simulator} waveform: {r.waves}")
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"{r.simulator}: FAILED (logs in {r.build_dir}); replay with COCOTB_RANDOM_SEED={r.seed}")
        for line in r.errors[:10]:
            print("   ", line)
    print("PASS: RTL equals the golden model bit for bit" if not failed else "FAIL")
    return 1 if failed else 0


def _sweep(cfg, args) -> int:
    from tqdm import tqdm

    from essop.app import sweep, tables

    try:
        # Every point's configuration is checked before any runs (an invalid BL or source fails here).
        n_points = len(sweep.points(cfg, args.bl, rngs=args.rng, element_words=args.element_words))
        if args.columns and "synth" in args.columns:
            from essop.synth.libraries import library
            library(args.lib)      # an unknown library fails here, not after the first points
        with tqdm(total=n_points, desc="sweep points", unit="point") as bar:
            rows = sweep.run_sweep(cfg, args.bl, rngs=args.rng, element_words=args.element_words,
                                   columns=args.columns, jobs=args.jobs, seed=args.seed, build_root=args.build_dir,
                                   workers=args.workers, ray_address=args.ray_address,
                                   options={"simulator": args.simulator, "pairs": args.pairs, "draws": args.draws,
                                            "lib": args.lib, "cache_dir": args.cache_dir},
                                   progress=bar.update)
    except (TypeError, ValueError) as exc:
        print(f"essop sweep: error: {exc}", file=sys.stderr)
        return 2
    csv_path, md_path = tables.write(rows, args.out / "sweep", title="ESSOP BL sweep")
    outputs = [csv_path, md_path]
    if any("RMSE vs FP64" in r for r in rows):
        outputs.append(sweep.plot(rows, args.out / "sweep.png"))
    print(tables.markdown(rows))
    print("wrote " + ", ".join(map(str, outputs)) + f" ({_stamp()})")
    failed = [r["config"] for r in rows if r.get("cocotb") == "FAIL"]
    if failed:
        print("cocotb check FAILED for: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def _stats(cfg, args) -> int:
    from tqdm import tqdm

    from essop.app import tables
    from essop.golden import statistics as stats

    start = time.monotonic()
    depths = (1, 4, 16)
    steps = sorted({1, cfg.steps_per_cycle})
    step_bls = (16, 64)
    try:
        for bl in args.bl:
            cfg.replace(bl=bl)
        for w in args.bias_widths:
            cfg.replace(lfsr_width=w)
        points = sum(len(stats.source_sharings(s)) for s in args.sources)
        total = (points * len(args.bl) + 2 * 2 * len(depths) + len(steps) * len(step_bls)
                 + points + 2 + len(args.bias_widths))
        with tqdm(total=total, desc="stats cells", unit="cell") as bar:
            bl_rows, slopes = stats.bl_table(cfg, args.bl, args.draws, args.seed, bar, sources=args.sources)
            bias_rows = stats.fixed_bias_table(cfg, args.sources, progress=bar, wider=args.bias_widths)
            lfsr = stats.source_config(cfg, "lfsr")
            restart_rows = stats.restart_table(lfsr.replace(bl=16), depths, args.draws, args.seed, bar)
            step_rows = stats.steps_table(lfsr, steps, step_bls, args.draws, args.seed, bar)
    except (TypeError, ValueError) as exc:
        print(f"essop stats: error: {exc}", file=sys.stderr)
        return 2
    sections = [
        ("bias, RMSE and neighbour correlation against BL, per random-number source", "bl", bl_rows),
        ("fitted log-log slope of RMSE against BL (1/sqrt(BL) gives -0.5, 1/BL gives -1)", "slopes", slopes),
        (f"fixed-input bias: exact long-run bias of C / BL for fixed magnitudes (a, b), max and RMS over all "
         f"(a, b), in units of full scale (BL = {cfg.bl}; per_element: the worst of four generator pairs); "
         f"then LFSR designs that pair the two sides otherwise (shared)", "fixed_bias", bias_rows),
        ("run-on vs restart: RMSE per pair of a group of K accumulated pairs (BL = 16, shared, lfsr)", "restart",
         restart_rows),
        ("LFSR shifts per cycle: 1 vs the step rule's (shared, lfsr)", "steps", step_rows),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    extra = "".join([f" --sources {' '.join(args.sources)}" if list(args.sources) != list(STATS_SOURCES) else "",
                     f" --bias-widths {' '.join(map(str, args.bias_widths))}" if args.bias_widths != [20] else ""])
    header = (f"Generated by `essop stats --draws {args.draws} --seed {args.seed} --bl "
              f"{' '.join(map(str, args.bl))}{extra}` on {_stamp()}, base configuration {cfg.name}, "
              f"{time.monotonic() - start:.0f} s.\n"
              f"Bias is consistent with zero when |z| = |bias / SE| < {stats.BIAS_BOUND_SE:g}.\n")
    doc = [header]
    for title, stem, rows in sections:
        tables.write(rows, args.out / stem, title=title)
        doc.append(f"## {title}\n\n{tables.markdown(rows)}")
    plot = stats.plot_rmse(bl_rows, args.out / "rmse_vs_bl.png",
                           title=f"RMSE (SC) against BL, {cfg.rows} x {cfg.cols}, q = {cfg.q}, {args.draws} draws")
    doc.append(f"![RMSE against BL]({plot.name})\n")
    text = "\n".join(doc)
    (args.out / "statistics.md").write_text(text)
    print(text)
    print(f"wrote {args.out}/statistics.md, {plot.name} and per-table CSV/Markdown")
    return 0

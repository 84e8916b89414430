"""The ceiling of ESSOP's efficiency: a cell grid with no periphery, against the FP16 multiplier.

An ESSOP array of m x n cells makes m*n products per BL cycles; its periphery (decoders, exponent trees,
shifters, LFSRs, comparators, converters) grows as m + n, the cells as m*n. With the periphery taken to zero
(m, n -> infinity) the array is its cells alone:

    area efficiency   = (m*n / BL) * f / (m*n * A_cell) = f / (BL * A_cell)
    energy / product  = E_cell per cycle * BL

so the best ESSOP can reach at one BL is set by one cell's area, its energy per cycle and the clock. The cell
is measured here by the same flow as everything else: a ``CellGrid`` alone (``rows`` x ``rows`` cells with their
read-out shift chain, nothing else) synthesised with the hierarchy kept, so that ``cell_i_j`` instances give
the cell's area, and simulated on the synthesis workload's own bitstreams (essop.golden: the workload's
magnitudes at each pair's exponent against the shared LFSRs' numbers), BL stream cycles and ``rows`` read-out
shifts per pair, for its per-net energy.

Two clocks bound the area efficiency: the FP16 multiplier's own Fmax (iso-clock: what an array whose periphery
is pipelined as deeply as the multiplier could run at), and the grid's own Fmax (a counter with its inputs at
the clock edge: no comparator, no broadcast wire in front of it, so an upper bound no array reaches).

``python -m essop.synth.ceiling`` (``make ceiling``) prints the table and writes ``ceiling.json`` and
``ceiling.md``; ``--array-csv`` adds the cell areas of synthesised arrays (``synth.csv`` of ``essop synth``),
so that the smallest cell the flow has produced at each BL is the one used.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from essop.config import EssopConfig

__all__ = ["PAPER_AREA_EFF", "PAPER_ENERGY_EFF", "grid_stimulus", "cell_point", "ceiling_rows", "markdown",
           "main"]

#: The paper's claims as ratios to the multiplier: +93.7 % area efficiency read as a gain (1.937x), and
#: 82.2 % energy efficiency read as a saving (1 / (1 - 0.822) = 5.6x), the reading our arrays do not reach.
PAPER_AREA_EFF = 1.937
PAPER_ENERGY_EFF = 1 / (1 - 0.822)

#: Vector pairs simulated for the grid's activity (the arrays' flow simulates 6).
_PAIRS = 6


def grid_stimulus(cfg: EssopConfig, pairs: int, seed: int = 0) -> list[tuple]:
    """Per cycle (en, bits_x, bits_d, signs_x, signs_d, shift) of ``CellGrid(cfg)`` on the synthesis workload:
    BL stream cycles per pair, then ``rows`` read-out shifts, as the array drives its grid (per_pair scaling;
    pair k's bitstream cycles are LFSR cycles k*BL .. k*BL + BL - 1)."""
    from essop.golden import fp16
    from essop.golden.random_sources import random_numbers
    from essop.golden.workload import operands

    xs, ds = operands(np.random.default_rng(seed), pairs, cfg.rows, cfg.cols)
    rx = random_numbers(cfg, "x", pairs * cfg.bl)      # [generators, cycles]
    rd = random_numbers(cfg, "d", pairs * cfg.bl)
    steps = []
    for p in range(pairs):
        a, sx, _, _ = fp16.to_magnitudes(xs[p], fp16.vector_exponent(xs[p]), cfg.q)
        b, sd, _, _ = fp16.to_magnitudes(ds[p], fp16.vector_exponent(ds[p]), cfg.q)
        signs_x, signs_d = _word(sx), _word(sd)
        for t in range(p * cfg.bl, (p + 1) * cfg.bl):
            # Shared: one generator per side, broadcast; per_element: one per element.
            steps.append((1, _word(rx[:, t] < a), _word(rd[:, t] < b), signs_x, signs_d, 0))
        steps += [(0, 0, 0, signs_x, signs_d, 1)] * cfg.rows
    return steps


def _word(bits) -> int:
    return sum(int(v) << k for k, v in enumerate(np.asarray(bits)))


def _grid_activity(grid, steps, vcd: Path) -> None:
    from amaranth.sim import Simulator

    # An up-counting grid has no sign inputs (its signs are periphery, outside the grid).
    signed = hasattr(grid, "i_sign_x")

    async def bench(ctx):
        for en, bx, bd, sx, sd, shift in steps:
            for port, v in zip((grid.i_en, grid.i_bit_x, grid.i_bit_d, grid.i_shift), (en, bx, bd, shift)):
                ctx.set(port, v)
            if signed:
                ctx.set(grid.i_sign_x, sx)
                ctx.set(grid.i_sign_d, sd)
            await ctx.tick()

    sim = Simulator(grid)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    vcd.parent.mkdir(parents=True, exist_ok=True)
    with sim.write_vcd(vcd_file=str(vcd)):
        sim.run()


def cell_point(cfg: EssopConfig, lib: str, build_root, pairs: int = _PAIRS, seed: int = 0) -> dict:
    """Synthesise ``CellGrid(cfg)`` alone and measure one cell: area (the ``cell_i_j`` instances' mean), the
    grid's Fmax, energy per product at the grid's per-net energy per cycle (everything in the grid, read-out
    shift chain included, shared by its cells)."""
    from essop.hdl.cell_grid import CellGrid
    from essop.synth.flow import synthesize

    build = Path(build_root) / f"{lib}_grid_{cfg.name}"
    _grid_activity(CellGrid(cfg), grid_stimulus(cfg, pairs, seed), build / "activity.vcd")
    res = synthesize(CellGrid(cfg), "grid", lib, build, split=True, vcd=build / "activity.vcd")
    cells = cfg.rows * cfg.cols
    cell_area = sum(a for inst, a in res.area_by_instance.items() if inst.startswith("cell_")) / cells
    return {"bl": cfg.bl, "cell": cfg.cell, "grid": f"{cfg.rows}x{cfg.cols}",
            "library": res.library, "cell_area_um2": cell_area, "grid_area_per_cell_um2": res.area_um2 / cells,
            "grid_fmax_ghz": res.fmax_hz / 1e9,
            "energy_per_product_fj": res.energy_per_cycle_j * cfg.bl / cells * 1e15,
            "clock_floor_share": res.activity["clock_floor_w"] / res.power_dynamic_w, "n_flops": res.n_flops}


def ceiling_rows(points: list[dict], fp16: dict, array_rows: list[dict] = ()) -> list[dict]:
    """One row per grid point: the zero-periphery area and energy efficiency against ``fp16`` (a row of
    essop.synth.compare: area_um2, fmax_ghz, energy_per_product_fj).

    The cell area used is the smallest the flow produced at that BL and cell kind: the grid's, or an
    ``array_rows`` array's cells area per cell (its ``cell_i_j`` instances; the same counters, sized in the
    array's flat netlist). The area is the grid's per cell (cells plus their shift chain's wiring, all of it
    O(m*n)) only where nothing smaller exists."""
    out = []
    for p in points:
        candidates = [(p["cell_area_um2"], f"grid {p['grid']}")]
        for r in array_rows:
            if (r.get("design") == "essop" and int(r["bl"]) == p["bl"] and r.get("cell", "updown") == p["cell"]
                    and r.get("library") == p["library"]):
                n = int(r["rows"]) * int(r["cols"])
                candidates.append((float(r["cells_area_um2"]) / n, f"array {r['rows']}x{r['cols']}"))
        area, source = min(candidates)
        bl, f_m = p["bl"], float(fp16["fmax_ghz"])
        iso = float(fp16["area_um2"]) / (bl * area)          # both at the multiplier's clock
        energy_ratio = float(fp16["energy_per_product_fj"]) / p["energy_per_product_fj"]
        out.append({
            "bl": bl, "cell": p["cell"], "library": p["library"], "cell_area_um2": area, "cell_area_from": source,
            "grid_fmax_ghz": p["grid_fmax_ghz"], "area_eff_iso_clock": iso,
            "area_eff_grid_fmax": iso * p["grid_fmax_ghz"] / f_m,
            "energy_per_product_fj": p["energy_per_product_fj"], "energy_eff": energy_ratio,
            "reaches_area_paper_iso_clock": iso >= PAPER_AREA_EFF,
            "reaches_energy_paper_saving": energy_ratio >= PAPER_ENERGY_EFF,
        })
    return out


def markdown(rows: list[dict], fp16: dict) -> str:
    head = (f"Baseline: FP16 multiplier, {fp16['stages']} stages, {float(fp16['area_um2']):.1f} um^2, "
            f"{float(fp16['fmax_ghz']):.3f} GHz, {float(fp16['energy_per_product_fj']):.1f} fJ/product "
            f"({fp16['library']}). Paper: area efficiency {PAPER_AREA_EFF:.3f}x, energy efficiency "
            f"{PAPER_ENERGY_EFF:.2f}x (82.2 % saving).\n\n")
    lines = ["| BL | cell | cell area um^2 (from) | area eff., multiplier's clock | grid Fmax GHz | "
             "area eff., grid Fmax | energy / product fJ | energy eff. |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['bl']} | {r['cell']} | {r['cell_area_um2']:.2f} ({r['cell_area_from']}) | "
                     f"{r['area_eff_iso_clock']:.3f}x | {r['grid_fmax_ghz']:.2f} | {r['area_eff_grid_fmax']:.3f}x | "
                     f"{r['energy_per_product_fj']:.1f} | {r['energy_eff']:.2f}x |")
    return head + "\n".join(lines) + "\n"


def _read_csv(paths) -> list[dict]:
    rows = []
    for p in paths:
        with open(p, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m essop.synth.ceiling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", default="nangate15")
    ap.add_argument("--bl", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--grid", type=int, default=8, help="the cell grid is GRID x GRID cells")
    ap.add_argument("--cell", nargs="+", default=None,
                    help="cell kinds (EssopConfig.cell) to measure; default: the configuration's only kind")
    ap.add_argument("--stages", type=int, default=6, help="the FP16 multiplier baseline's pipeline stages")
    ap.add_argument("--array-csv", type=Path, nargs="*", default=[],
                    help="synth.csv files of `essop synth` whose arrays' cell areas also count")
    ap.add_argument("--out", type=Path, default=Path("results/ceiling"))
    ap.add_argument("--build", type=Path, default=Path("build/ceiling"))
    args = ap.parse_args(argv)

    from essop.synth.compare import fp16_row

    fp16 = fp16_row(args.stages, args.lib, args.build)
    kinds = args.cell or [None]
    points = []
    for kind in kinds:
        for bl in args.bl:
            cfg = EssopConfig(rows=args.grid, cols=args.grid, bl=bl)
            if kind is not None:
                cfg = cfg.replace(cell=kind)
            p = cell_point(cfg, args.lib, args.build)
            print(f"BL {bl} {p['cell']}: cell {p['cell_area_um2']:.2f} um^2, grid {p['grid_fmax_ghz']:.2f} GHz, "
                  f"{p['energy_per_product_fj']:.1f} fJ/product", flush=True)
            points.append(p)
    rows = ceiling_rows(points, fp16, _read_csv(args.array_csv))
    text = markdown(rows, fp16)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ceiling.json").write_text(json.dumps({"fp16": fp16, "points": points, "rows": rows}, indent=2))
    (args.out / "ceiling.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The BL sweep: one table row per (random-number source, BL, sharing) point, built from registered column
providers.

A column provider is a function `provider(point) -> dict` of column name -> value for one point. The sweep
core (run_sweep) knows none of them by name; it runs the registered ones. This module registers the four the
project has: `cocotb` (the bit-exact check of the generated RTL, essop.sim), `estimator` (the golden model's
error against FP64, essop.golden.statistics), and the opt-in `synth` (area, Fmax and energy, essop.synth) and
`accuracy` (a short ESSOP training run, essop.training). More can be added with `register_column`.

Why the providers live here, each importing its room inside the function: the sweep is the application's,
and the rooms below it (sim, golden, synth, training) must not import the application layer, so the
providers cannot register themselves from synth/ or training/ without a loop no import graph shows. Importing
inside each provider keeps `essop sweep` from loading
PyTorch or the synthesis flow unless that column runs.

Points are independent and run in parallel processes (`jobs`); each process looks providers up by name in the
registry this module fills when it is imported.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from essop.config import EssopConfig
from essop.plotting import pyplot, save_figure

#: The accuracy column's short training protocol (per point): epochs, training images, test images, seed.
#: It ranks configurations against each other on this protocol only; it is not the accuracy of a full
#: 160-epoch run (docs/results.md).
SWEEP_PROTOCOL = {"epochs": 2, "subset": 1000, "test_subset": 500, "seed": 0}
#: Cell library of the synth column when the sweep's options name none.
DEFAULT_LIBRARY = "nangate15"


@dataclass(frozen=True)
class SweepPoint:
    """What a provider gets: the point's configuration and the sweep's shared settings."""
    cfg: EssopConfig
    build_dir: Path                      # a directory private to this point
    seed: int
    options: dict[str, Any] = field(default_factory=dict)   # e.g. draws, pairs, simulator


@dataclass(frozen=True)
class ColumnProvider:
    name: str
    func: Callable[[SweepPoint], dict[str, Any]]
    default: bool
    help: str


_PROVIDERS: dict[str, ColumnProvider] = {}


def register_column(name: str, func: Callable[[SweepPoint], dict[str, Any]], *, default: bool = True,
                    help: str = "") -> None:
    """Add a column provider. `default=False` providers run only when named in --columns (slow ones)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"provider name must be a non-empty str, not {name!r}")
    if not callable(func):
        raise TypeError(f"provider {name!r} must be callable, not {func!r}")
    if name in _PROVIDERS and _PROVIDERS[name].func is not func:
        raise ValueError(f"column provider {name!r} is already registered")
    _PROVIDERS[name] = ColumnProvider(name, func, default, help)


def providers() -> dict[str, ColumnProvider]:
    """Every registered provider, by name."""
    return dict(_PROVIDERS)


# ---- the providers: each imports the room that does its work when it runs ---------------------------------
def cocotb_column(point: SweepPoint) -> dict[str, Any]:
    from essop.sim.runner import run_cocotb
    r = run_cocotb(point.cfg, point.options.get("simulator", "icarus"), point.build_dir,
                   pairs=point.options.get("pairs", 8), seed=point.seed)
    return {"cocotb": "PASS" if r.passed else "FAIL", "simulator": r.simulator,
            "rows compared": r.rows_compared, "mismatches": r.mismatches, "sim cycles": r.cycles}


def estimator_column(point: SweepPoint) -> dict[str, Any]:
    from essop.golden import statistics as stats
    s = stats.summarize(stats.draw_errors(point.cfg, point.options.get("draws", 300), point.seed))
    return {"RMSE (SC)": s["RMSE (SC)"], "RMSE vs FP64": s["RMSE vs FP64"], "bias z (SC)": s["z (SC)"],
            "corr (row neighbours)": s["corr (row neighbours)"]}


def synth_column(point: SweepPoint) -> dict[str, Any]:
    """Yosys + OpenSTA on the point's array: area, Fmax, energy (library: option 'lib', default nangate15)."""
    from essop.synth.compare import essop_row
    row = essop_row(point.cfg, point.options.get("lib") or DEFAULT_LIBRARY, point.build_dir / "synth",
                    seed=point.seed)
    return {
        "area (um^2)": round(row["area_um2"], 1),
        "cells area (um^2)": round(row["cells_area_um2"], 1),
        "periphery area (um^2)": round(row["periphery_area_um2"], 1),
        "Fmax (GHz)": round(row["fmax_ghz"], 3),
        "energy/product (fJ)": round(row["energy_per_product_fj"], 2),
        "products/s/um^2": f"{row['throughput_per_area']:.4g}",
    }


def accuracy_column(point: SweepPoint) -> dict[str, Any]:
    """ResNet-32 trained with ESSOP weight updates of the point's configuration (BL, q, sharing, LFSR fields)
    on SWEEP_PROTOCOL: a fixed subset of CIFAR-10 (data from $ESSOP_CIFAR10 or the default path, as
    `essop train`; decoded copy in option 'cache_dir'), one PyTorch thread per point so that `jobs` points
    share the cores. Reports the final test accuracy and the training wall time."""
    from essop.training.train import TrainOptions, train

    summary = train(TrainOptions(mode="essop", essop=point.cfg, epochs=SWEEP_PROTOCOL["epochs"],
                                 subset=SWEEP_PROTOCOL["subset"], test_subset=SWEEP_PROTOCOL["test_subset"],
                                 seed=SWEEP_PROTOCOL["seed"], threads=1,
                                 cache_dir=point.options.get("cache_dir"), out=str(point.build_dir / "train"),
                                 progress=False))
    final = summary["final"]
    return {"test acc (%) [short protocol]": round(100 * final["test_acc"], 2),
            "train wall (s)": round(final["wall_s"], 1)}


register_column("cocotb", cocotb_column,
                help="generate the Verilog, run the cocotb testbench (Icarus by default), bit-exact check")
register_column("estimator", estimator_column,
                help="golden-model error against the exact FP64 product, relative to full scale")
register_column("synth", synth_column, default=False,
                help=f"Yosys + OpenSTA area, Fmax and energy per product (slow; library: --lib, default "
                     f"{DEFAULT_LIBRARY})")
register_column("accuracy", accuracy_column, default=False,
                help="ResNet-32 test accuracy after a short ESSOP training protocol "
                     f"({SWEEP_PROTOCOL['epochs']} epochs on {SWEEP_PROTOCOL['subset']} CIFAR-10 images; slow)")


# ---- the core ---------------------------------------------------------------------------------------------
def _run_point(cfg_json: str, build_dir: str, seed: int, options: dict, names: list[str]) -> dict:
    cfg = EssopConfig.from_json(cfg_json)
    point = SweepPoint(cfg, Path(build_dir), seed, options)
    table = providers()
    row: dict[str, Any] = {"source": cfg.rng_label, "BL": cfg.bl, "sharing": cfg.sharing, "rows": cfg.rows,
                           "cols": cfg.cols, "q": cfg.q, "config": cfg.name}
    for name in names:
        row.update(table[name].func(point))
    return row


def points(base: EssopConfig, bls, sharings=("shared", "per_element"), rngs=None,
           element_words: bool = False) -> list[EssopConfig]:
    """The sweep's configurations: every (source, BL, sharing); with `element_words`, each LFSR per_element
    point followed by its element-words twin (one LFSR per side and a constant XOR word per element)."""
    rngs = [base.rng] if rngs is None else list(rngs)
    out = []
    for r in rngs:
        for bl in bls:
            for s in sharings:
                out.append(base.replace(bl=bl, sharing=s, rng=r, element_words=False))
                if element_words and r == "lfsr" and s == "per_element":
                    out.append(out[-1].replace(element_words=True))
    return out


def run_sweep(base: EssopConfig, bls, *, rngs=None, element_words: bool = False, columns: list[str] | None = None,
              jobs: int = 1, seed: int = 1,
              build_root: Path = Path("build/sweep"), options: dict | None = None,
              progress: Callable | None = None, workers: int | None = None,
              ray_address: str | None = None) -> list[dict]:
    """Rows, sorted by (source, sharing, BL), one per point of `points` (sources `rngs`, default base.rng;
    `element_words` adds the element-words twins); `columns` names providers (default: the default ones).

    With ``workers`` or ``ray_address`` the points are Ray tasks (essop.app.tasks), each with its result cached
    in its build folder: a stopped sweep run again recomputes only the points it had not finished. Without
    them, ``jobs`` processes of this machine run the points, every point computed afresh."""
    table = providers()
    names = [n for n, p in table.items() if p.default] if columns is None else list(columns)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown column provider(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(map(repr, table))}")
    cfgs = points(base, bls, rngs=rngs, element_words=element_words)
    args = [(c.to_json(), str(Path(build_root) / c.name), seed, dict(options or {}), names) for c in cfgs]
    rows = []
    if workers is not None or ray_address is not None:
        import essop
        import essop.app
        import essop.golden
        import essop.hdl
        import essop.sim
        import essop.synth
        import essop.training
        from essop.app.tasks import CachedTask, code_fingerprint, run_tasks
        # Every package a provider may run: a code change recomputes the cached points.
        code = code_fingerprint([essop, essop.hdl, essop.golden, essop.sim, essop.synth, essop.training,
                                 essop.app])
        tasks = [CachedTask(_run_point, a, a[1], {"code": code, "config": a[0], "seed": seed,
                                                  "options": a[3], "columns": names}) for a in args]
        results = run_tasks(tasks, workers=workers, ray_address=ray_address,
                            done=(lambda *_: progress()) if progress else None)
        rows = [row for row, _ in results]
    elif jobs <= 1:
        for a in args:
            rows.append(_run_point(*a))
            if progress:
                progress()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for fut in as_completed([pool.submit(_run_point, *a) for a in args]):
                rows.append(fut.result())
                if progress:
                    progress()
    return sorted(rows, key=lambda r: (r["source"], r["sharing"], r["BL"]))


def plot(rows: list[dict], path: Path, column: str = "RMSE vs FP64") -> Path:
    """Error against BL, one line per (source, sharing mode), with a 1/sqrt(BL) guide (log-log)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for source, sharing in sorted({(r.get("source", "lfsr"), r["sharing"]) for r in rows}):
        pts = sorted((r["BL"], r[column]) for r in rows
                     if (r.get("source", "lfsr"), r["sharing"]) == (source, sharing) and column in r)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{source}, {sharing}")
    bls = sorted({r["BL"] for r in rows})
    ref = [r[column] for r in rows if r["BL"] == bls[0] and column in r]
    if ref:
        ax.plot(bls, [max(ref) * (bls[0] / b) ** 0.5 for b in bls], "k--", lw=0.8, label="1/sqrt(BL)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bitstream length BL")
    ax.set_ylabel(f"{column} (fraction of full scale)")
    ax.set_title("ESSOP estimator error against BL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)

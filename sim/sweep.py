"""The BL sweep: one table row per (BL, sharing) point, built from registered column providers.

A column provider is a function `provider(point) -> dict` of column name -> value for one point. The sweep
core knows none of them by name: this module registers two (`cocotb`: the bit-exact check of the generated
RTL; `estimator`: the golden model's error against FP64), and other parts add theirs by calling
`register_column` in a module named in OPTIONAL_PROVIDER_MODULES (e.g. essop.synth.sweep_columns for area,
energy and Fmax, essop.training.sweep_columns for accuracy), which the sweep imports when it exists.

Points are independent and run in parallel processes (`jobs`); each process looks providers up by name.
"""
from __future__ import annotations

import importlib
import importlib.util
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from essop.config import EssopConfig

OPTIONAL_PROVIDER_MODULES = ("essop.synth.sweep_columns", "essop.training.sweep_columns")


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
    """Every registered provider, after importing the optional provider modules that exist."""
    for module in OPTIONAL_PROVIDER_MODULES:
        if _module_exists(module):
            importlib.import_module(module)
    return dict(_PROVIDERS)


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# ---- the two providers of this part ----------------------------------------------------------------------
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


register_column("cocotb", cocotb_column,
                help="generate the Verilog, run the cocotb testbench (Icarus by default), bit-exact check")
register_column("estimator", estimator_column,
                help="golden-model error against the exact FP64 product, relative to full scale")


# ---- the core ---------------------------------------------------------------------------------------------
def _run_point(cfg_json: str, build_dir: str, seed: int, options: dict, names: list[str]) -> dict:
    cfg = EssopConfig.from_json(cfg_json)
    point = SweepPoint(cfg, Path(build_dir), seed, options)
    table = providers()
    row: dict[str, Any] = {"BL": cfg.bl, "sharing": cfg.sharing, "rows": cfg.rows, "cols": cfg.cols,
                           "q": cfg.q, "config": cfg.name}
    for name in names:
        row.update(table[name].func(point))
    return row


def points(base: EssopConfig, bls, sharings=("shared", "per_element")) -> list[EssopConfig]:
    return [base.replace(bl=bl, sharing=s) for bl in bls for s in sharings]


def run_sweep(base: EssopConfig, bls, *, columns: list[str] | None = None, jobs: int = 1, seed: int = 1,
              build_root: Path = Path("build/sweep"), options: dict | None = None,
              progress: Callable | None = None) -> list[dict]:
    """Rows, sorted by (sharing, BL), one per point; `columns` names providers (default: the default ones)."""
    table = providers()
    names = [n for n, p in table.items() if p.default] if columns is None else list(columns)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown column provider(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(map(repr, table))}")
    cfgs = points(base, bls)
    args = [(c.to_json(), str(Path(build_root) / c.name), seed, dict(options or {}), names) for c in cfgs]
    rows = []
    if jobs <= 1:
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
    return sorted(rows, key=lambda r: (r["sharing"], r["BL"]))


def plot(rows: list[dict], path: Path, column: str = "RMSE vs FP64") -> Path:
    """Error against BL, one line per sharing mode, with a 1/sqrt(BL) guide (log-log)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for sharing in sorted({r["sharing"] for r in rows}):
        pts = sorted((r["BL"], r[column]) for r in rows if r["sharing"] == sharing and column in r)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=sharing)
    bls = sorted({r["BL"] for r in rows})
    ref = [r[column] for r in rows if r["BL"] == bls[0] and column in r]
    if ref:
        ax.plot(bls, [ref[0] * (bls[0] / b) ** 0.5 for b in bls], "k--", lw=0.8, label="1/sqrt(BL)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bitstream length BL")
    ax.set_ylabel(f"{column} (fraction of full scale)")
    ax.set_title("ESSOP estimator error against BL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Report stage: the rows of essop.synth.compare as CSV and Markdown tables, and as a picture.

The picture depends on what was swept:

- one array size and one BL (the default ``essop synth``): bars, one panel per metric — area per product
  unit, energy per product, products per second per um^2 — ESSOP (each sharing mode) beside the FP16
  multiplier, each bar labelled with its value and its ratio to the multiplier;
- several BLs or sizes: a sweep plot, the same three metrics against BL (or against m*n when only the size
  varies), one line per sharing mode and size (or BL), the FP16 multiplier as a dotted line.

Every column of the tables is a number or a label (design, library, sharing, scaling, output format); an
empty cell means the column does not apply to that design (e.g. BL of the FP16 multiplier).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from essop.plotting import pyplot, save_figure
from essop.synth.compare import FIELDS

__all__ = ["write_tables", "plot", "METRICS"]

#: The three per-product-unit metrics the pictures show: (column, axis label, better when).
METRICS = [("area_per_product_unit_um2", "area per product unit (um^2)", "lower"),
           ("energy_per_product_fj", "energy per product (fJ)", "lower"),
           ("throughput_per_area", "products / s / um^2", "higher")]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _markdown(rows: list[dict], fields: list[str]) -> str:
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(_fmt(r.get(f, "")) for f in fields) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_tables(out: Path, rows: list[dict], comparisons: list[dict], meta: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "synth.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    cfields = list(comparisons[0]) if comparisons else []
    if comparisons:
        with open(out / "comparison.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cfields)
            w.writeheader()
            w.writerows(comparisons)
    md = ["# Synthesis results", "", "```", json.dumps(meta, indent=2), "```", "",
          "## Designs", "", _markdown(rows, FIELDS)]
    if comparisons:
        md += ["## ESSOP vs FP16 baseline", "",
               "ratio = ESSOP/baseline products per s per um^2 (area) or per joule (energy); "
               "gain = ratio - 1; saving = 1 - 1/ratio.", "", _markdown(comparisons, cfields)]
    text = "\n".join(md)
    (out / "synth.md").write_text(text)
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return text


def _label(r: dict) -> str:
    source = f" {r['rng']}" if r.get("rng", "lfsr") != "lfsr" else ""
    return f"ESSOP {r['rows']}x{r['cols']} BL{r['bl']}\n{r['sharing']}{source}"


def _bars(axes, essop: list[dict], base: dict | None) -> None:
    """One panel per metric: a bar per ESSOP row and one for the baseline, value and ratio on each."""
    labels = [_label(r) for r in essop] + ([f"FP16 mul\n{base['stages']} stages"] if base else [])
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple"][:len(essop)] + (["0.4"] if base else [])
    for ax, (col, ylabel, better) in zip(axes, METRICS):
        values = [r[col] for r in essop] + ([base[col]] if base else [])
        bars = ax.bar(range(len(values)), values, color=colors)
        for bar, v in zip(bars, values):
            text = f"{v:.3g}"
            if base:
                text += f"\n{v / base[col]:.2f}x"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8)
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel.split(' (')[0]} ({better} is better)", fontsize=9)
        ax.margins(y=0.25)
        ax.grid(True, axis="y", alpha=0.3)


def _sweep(axes, essop: list[dict], base: dict | None) -> None:
    """Each metric against BL (or m*n when only the size varies); one line per sharing mode and size (BL)."""
    from matplotlib.ticker import NullFormatter

    bls = sorted({r["bl"] for r in essop})
    by_bl = len(bls) > 1
    x_of = (lambda r: r["bl"]) if by_bl else (lambda r: r["rows"] * r["cols"])
    # Lines: (sharing, the other axis), so every line varies along x only.
    group_of = (lambda r: (r["sharing"], f"{r['rows']}x{r['cols']}")) if by_bl else \
        (lambda r: (r["sharing"], f"BL{r['bl']}"))
    groups = sorted({group_of(r) for r in essop})
    for ax, (col, ylabel, better) in zip(axes, METRICS):
        for g in groups:
            sel = sorted((r for r in essop if group_of(r) == g), key=x_of)
            ax.plot([x_of(r) for r in sel], [r[col] for r in sel], marker="o" if g[0] == "shared" else "s",
                    label=f"ESSOP {g[1]} {g[0]}")
        if base:
            ax.axhline(base[col], color="k", linestyle=":", label=f"FP16 multiplier, {base['stages']} stages")
        ax.set_xscale("log", base=2)
        ax.set(yscale="log", xlabel="BL" if by_bl else "array size m*n", ylabel=ylabel)
        # Ticks at the swept values only (BLs and sizes are powers of two or close to them).
        xs = sorted({x_of(r) for r in essop})
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{ylabel.split(' (')[0]} ({better} is better)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)


def plot(out: Path, rows: list[dict], name: str = "synth.png") -> Path | None:
    """Draw the rows of one library (bars for one configuration point, a sweep plot for several) into
    ``out / name``; None when there is no ESSOP row."""
    plt = pyplot()

    essop = [r for r in rows if r["design"] == "essop"]
    fp16 = [r for r in rows if r["design"] == "fp16_mul"]
    if not essop:
        return None
    base = fp16[0] if fp16 else None   # the comparison's baseline
    one_point = len({(r["rows"], r["cols"], r["bl"]) for r in essop}) == 1
    fig, axes = plt.subplots(1, len(METRICS), figsize=(15, 4.6))
    (_bars if one_point else _sweep)(axes, essop, base)
    fig.suptitle(f"ESSOP vs FP16 multiplier, {essop[0]['library']} "
                 f"(per product unit: one ESSOP cell with its share of the periphery, one multiplier)")
    fig.tight_layout()
    return save_figure(fig, out / name)

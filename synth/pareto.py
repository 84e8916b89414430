"""Iso-accuracy picture: what each ESSOP configuration (BL, scaling, sharing) costs in accuracy against what it
gains in area and energy efficiency over the FP16 multiplier.

Three sources, each the committed output of its own tool, read as they are:

- accuracy: the campaign report (``essop campaign ... --report-only`` writes ``docs/accuracy/<protocol>/
  table.json``): each row's gap to the FP32 rows in percentage points, or its status while it is not done;
- gradient fidelity: the first table of ``docs/fidelity.md`` (``essop fidelity``'s default grid), then that of
  ``docs/fidelity/campaign/fidelity.md`` (``essop fidelity --protocol``: the campaign's rows, BL 32 and
  per_element among them): the median layer cosine of the ESSOP weight gradient to the FP32 one and, the proxy
  drawn, the same in the layers' output space (how the update moves what each layer computes on the minibatch:
  it sees what shared random numbers do, the weight-space cosine does not), measured before any training row;
- hardware: ``synth.csv`` files of ``essop synth``: each array's products/s/um^2 and energy per product against
  the FP16 multiplier row of the same file and library.

A configuration is (scaling, sharing, BL) and, for the hardware only, the cell kind: the up-counting cell
(EssopConfig.cell) gives the same counts bit for bit, so it takes the accuracy and fidelity of its up/down twin
and differs only in its efficiency. The figure has two rows of panels, x = area efficiency and energy
efficiency (ratio to the multiplier) in both: the top row's y is the accuracy gap (pp; rows not done are drawn
on a "pending" strip with their status), the bottom row's y is 1 - median output cosine (the proxy; lower is better).
``make pareto`` rebuilds it; as campaign rows land, ``essop campaign ... --report-only`` then ``make pareto``.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import textwrap
from pathlib import Path

from essop.plotting import pyplot, save_figure

__all__ = ["read_accuracy", "read_fidelity", "read_hardware", "points", "plot", "markdown", "main"]

#: docs/fidelity.md's default grid, then `make fidelity`'s table of the accuracy campaign's rows.
FIDELITY_TABLES = [Path("docs/fidelity.md"), Path("docs/fidelity/campaign/fidelity.md")]
_FIDELITY_HEADER = "| configuration | median cosine |"
_FIDELITY_CONFIG = re.compile(r"essop (per_pair|block|per_sample) (shared|per_element) BL (\d+)(?: (\S+))?")


def read_accuracy(path: Path) -> dict[tuple, dict]:
    """(scaling, sharing, bl, source) -> {gap_pp (None until done), status, row, runs} for every ESSOP configuration of
    a campaign report; plus the FP32 reference's accuracy under the key 'fp32'. A configuration with several
    rows (seeds) takes the mean gap of its done rows (`runs` of them) and, while none is done, the status of
    its furthest row."""
    table = json.loads(Path(path).read_text())
    out = {"fp32": table.get("fp32", {})}
    rows: dict[tuple, list[dict]] = {}
    for r in table["rows"]:
        # A row's random-number source (lfsr, lfsr+words, sobol, ...) is part of its configuration.
        if r["mode"] != "essop":
            continue
        rows.setdefault((r["scaling"], r["sharing"], int(r["bl"]), r.get("source") or "lfsr"), []).append(r)
    for key, group in rows.items():
        done = [r for r in group if r["status"] == "done" and r["gap_pp"] is not None]
        if done:
            out[key] = {"gap_pp": sum(r["gap_pp"] for r in done) / len(done), "status": "done",
                        "row": ", ".join(r["row"] for r in done), "runs": len(done),
                        "epochs_done": done[0]["epochs_done"], "epochs": done[0]["epochs"]}
        else:
            r = max(group, key=lambda r: r["epochs_done"])
            out[key] = {"gap_pp": None, "status": r["status"], "row": r["row"], "runs": 0,
                        "epochs_done": r["epochs_done"], "epochs": r["epochs"]}
    return out


def read_fidelity(path: Path) -> dict[tuple, dict]:
    """(scaling, sharing, bl, source) -> {"cosine": median layer cosine of the weight gradient, "output_cosine":
    median layer cosine in output space, None in tables written before that column}, from the first
    configuration table of an `essop fidelity` markdown file; the per-layer and later tables are other
    questions. The source is named after the BL (lfsr+words, sobol, ...); none is the plain LFSR."""
    out, columns = {}, None
    for line in Path(path).read_text().splitlines():
        if line.startswith(_FIDELITY_HEADER):
            if out:
                break
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            continue
        if columns is not None:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            m = _FIDELITY_CONFIG.fullmatch(cells[0])
            if m:
                value = dict(zip(columns, cells))
                out[(m.group(1), m.group(2), int(m.group(3)), m.group(4) or "lfsr")] = {
                    "cosine": float(value["median cosine"]),
                    "output_cosine": float(value["median output cosine"]) if "median output cosine" in value
                    else None}
    if not out:
        raise ValueError(f"{path}: no '{_FIDELITY_HEADER}' table with essop rows")
    return out


def read_hardware(paths) -> tuple[dict[tuple, dict], dict]:
    """(scaling, sharing, bl, source, cell, clock_gating) -> the largest shift read-out array of that configuration in the synth.csv files (the one
    whose periphery is amortised best), with its efficiency ratios to the FP16 multiplier of its own file and
    library; and that baseline row."""
    best, base = {}, None
    for p in paths:
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
        fp16 = {r["library"]: r for r in rows if r["design"] == "fp16_mul"}
        for r in rows:
            if r["design"] != "essop" or r["library"] not in fp16:
                continue
            # The plot compares idealised efficiencies (BL cycles per product), where a shadow read-out bank is
            # only cost; rows of another read-out would otherwise take the place of their shift twin.
            if (r.get("readout") or "shift") != "shift":
                continue
            b = fp16[r["library"]]
            base = base or b
            # synth.csv files written before the cell column existed hold up/down cells.
            # ... and before the clock_gating column, ungated ones.
            # ... and before the rng column, plain LFSR ones.
            key = (r["scaling"], r["sharing"], int(r["bl"]), r.get("rng") or "lfsr", r.get("cell") or "updown",
                   r.get("clock_gating") == "True")
            h = {"rows": int(r["rows"]), "cols": int(r["cols"]), "library": r["library"],
                 "area_eff": float(r["throughput_per_area"]) / float(b["throughput_per_area"]),
                 "energy_eff": float(b["energy_per_product_fj"]) / float(r["energy_per_product_fj"])}
            if key not in best or h["rows"] * h["cols"] > best[key]["rows"] * best[key]["cols"]:
                best[key] = h
    return best, base


def points(accuracy: dict, fidelity: dict, hardware: dict) -> list[dict]:
    """One point per configuration with hardware numbers; its accuracy (or status) and fidelity where known."""
    out = []
    for key in sorted(hardware):
        scaling, sharing, bl, source, cell, gated = key
        # Neither the cell kind nor clock gating changes the counts: accuracy and fidelity are the configuration's.
        acc = accuracy.get(key[:4])
        out.append({"scaling": scaling, "sharing": sharing, "bl": bl, "source": source, "cell": cell,
                    "clock_gating": gated, **hardware[key],
                    "gap_pp": acc["gap_pp"] if acc else None,
                    "status": acc["status"] if acc else "not in the campaign",
                    "median_cosine": (fidelity.get(key[:4]) or {}).get("cosine"),
                    "median_output_cosine": (fidelity.get(key[:4]) or {}).get("output_cosine")})
    return out


def _label(p: dict) -> str:
    source = p.get("source", "lfsr")
    return (f"{p['scaling']} {p['sharing']} BL{p['bl']}" + ("" if source == "lfsr" else f" {source}")
            + (" upcount" if p["cell"] == "upcount" else "")
            + (" gated" if p["clock_gating"] else ""))


def markdown(pts: list[dict]) -> str:
    lines = ["| configuration | array | area eff. vs FP16 | energy eff. vs FP16 | accuracy gap to FP32 (pp) | "
             "median gradient cosine | median output cosine (proxy) |", "|---|---|---|---|---|---|---|"]

    def cell(v):
        return f"{v:.3f}" if v is not None else "not measured"

    for p in pts:
        gap = f"{p['gap_pp']:+.2f}" if p["gap_pp"] is not None else p["status"]
        lines.append(f"| {_label(p)} | {p['rows']}x{p['cols']} {p['library']} | {p['area_eff']:.3f}x | "
                     f"{p['energy_eff']:.2f}x | {gap} | {cell(p['median_cosine'])} | "
                     f"{cell(p['median_output_cosine'])} |")
    return "\n".join(lines) + "\n"


#: Marker of a point: by scaling for the shared LFSR arrays, by random-number source for the others.
SCALING_MARKERS = {"per_pair": "o", "block": "s", "per_sample": "D"}
SOURCE_MARKERS = {"lfsr+shift": "X", "sobol": "P", "sobol+shift": "*"}
PER_ELEMENT_MARKERS = {"lfsr": "^", "lfsr+words": "v"}
MARKER_LABELS = [("per_pair shared", "o"), ("block shared", "s"), ("per_sample shared", "D"), ("per_element", "^"),
                 ("per_element, element words", "v"), ("shared, per-pair shift", "X"), ("shared, Sobol", "P"),
                 ("shared, Sobol + shift", "*")]


def _marker(p: dict) -> str:
    source = p.get("source", "lfsr")
    if p["sharing"] == "per_element":
        return PER_ELEMENT_MARKERS.get(source, "^")
    return SOURCE_MARKERS.get(source) or SCALING_MARKERS.get(p["scaling"], "o")


def plot(pts: list[dict], out: Path, title: str) -> Path:
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    colors = {8: "tab:blue", 16: "tab:orange", 32: "tab:green", 64: "tab:red", 4: "tab:purple"}
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), sharex="col")
    done = [p for p in pts if p["gap_pp"] is not None]
    pending = [p for p in pts if p["gap_pp"] is None]
    gaps = [p["gap_pp"] for p in done]
    # Rows not done sit on a strip below the measured gaps, each labelled with its status.
    strip = (min(gaps + [0.0]) - 1.0)
    for col, (xkey, xlabel) in enumerate([("area_eff", "area efficiency vs FP16 multiplier (x)"),
                                          ("energy_eff", "energy efficiency vs FP16 multiplier (x)")]):
        ax_acc, ax_fid = axes[0, col], axes[1, col]
        for p in pts:
            style = dict(marker=_marker(p), color=colors.get(p["bl"], "k"), markersize=9)
            if p["cell"] == "upcount":
                style |= dict(markeredgecolor="k", markeredgewidth=2)
            if p["clock_gating"]:
                style |= dict(markeredgecolor="magenta", markeredgewidth=2)
            # A hardware variant's point sits beside its labelled up/down twin at the same y: the legend names it.
            text = p["cell"] != "upcount" and not p["clock_gating"]
            if p["gap_pp"] is not None:
                ax_acc.plot(p[xkey], p["gap_pp"], linestyle="none", **style)
                if text:
                    ax_acc.annotate(_label(p), (p[xkey], p["gap_pp"]), fontsize=7, xytext=(5, 4),
                                    textcoords="offset points")
            else:
                # Unlabelled: these points crowd one strip; the note under the axes names them.
                ax_acc.plot(p[xkey], strip, linestyle="none", markerfacecolor="none", **style)
            if p["median_output_cosine"] is not None:
                ax_fid.plot(p[xkey], 1 - p["median_output_cosine"], linestyle="none", **style)
                if text:
                    ax_fid.annotate(_label(p), (p[xkey], 1 - p["median_output_cosine"]), fontsize=7,
                                    xytext=(-5, 6), textcoords="offset points", ha="right")
        for ax in (ax_acc, ax_fid):
            ax.axvline(1.0, color="k", linestyle=":", linewidth=1)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(True, which="both", alpha=0.3)
            ax.margins(x=0.25)      # room for the labels written left of the leftmost points
        ax_acc.axhline(0.0, color="k", linewidth=0.8)
        if pending:
            ax_acc.axhspan(strip - 0.5, strip + 0.5, color="0.9", zorder=0)
        ax_acc.set_ylabel("accuracy gap to FP32 (pp, final test acc.; higher is better)")
        ax_fid.set_ylabel("1 - median layer output cosine to FP32\n(proxy, lower is better)")
        ax_fid.set_xlabel(xlabel + " (dotted: break-even)")
        ax_acc.set_title(f"accuracy gap against {xlabel.split(' vs')[0]}", fontsize=10)
        ax_fid.set_title(f"gradient-fidelity proxy against {xlabel.split(' vs')[0]}", fontsize=10)
    handles = [plt.Line2D([], [], marker="o", color=c, linestyle="none", label=f"BL {b}")
               for b, c in sorted(colors.items()) if any(p["bl"] == b for p in pts)]
    used = {_marker(p) for p in pts}
    handles += [plt.Line2D([], [], marker=m, color="0.3", linestyle="none", label=lab)
                for lab, m in MARKER_LABELS if m in used]
    if any(p["cell"] == "upcount" for p in pts):
        handles.append(plt.Line2D([], [], marker="o", color="0.7", markeredgecolor="k", markeredgewidth=2,
                                  linestyle="none", label="up-counting cells (same accuracy)"))
    if any(p["clock_gating"] for p in pts):
        handles.append(plt.Line2D([], [], marker="o", color="0.7", markeredgecolor="magenta", markeredgewidth=2,
                                  linestyle="none", label="up-counting, clock gating (same accuracy)"))
    # Two rows at most: one row of every handle is wider than the figure.
    fig.legend(handles=handles, loc="lower center", ncol=(len(handles) + 1) // 2, fontsize=8)
    bottom = 0.06
    if pending:
        names = sorted({_label(p) + ("" if p["status"] == "pending" else f" ({p['status']})")
                        for p in pending if p["cell"] != "upcount" and not p["clock_gating"]})
        fig.text(0.5, 0.065, textwrap.fill("Hollow, on the grey strip: no accuracy yet: " + ", ".join(names), 180),
                 ha="center", va="bottom", fontsize=8)
        bottom = 0.1
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, bottom, 1, 0.95))
    return save_figure(fig, out)


def _percent(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m essop.synth.pareto", description=__doc__.split("\n\n")[0])
    ap.add_argument("--accuracy", type=Path, default=Path("docs/accuracy/r32-e15/table.json"))
    ap.add_argument("--fidelity", type=Path, nargs="+", default=FIDELITY_TABLES,
                    help="essop fidelity tables, the first table of each; where two give a configuration, "
                         "the earlier file's value counts (default: the default grid, then the campaign's rows)")
    ap.add_argument("--synth-csv", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/pareto.png"))
    args = ap.parse_args(argv)
    acc = read_accuracy(args.accuracy)
    hardware, base = read_hardware(args.synth_csv)
    if not hardware:
        ap.error("no ESSOP row with an FP16 multiplier row of the same library in the synth.csv files")
    fidelity = {}
    for path in args.fidelity:
        for key, measured in read_fidelity(path).items():
            fidelity.setdefault(key, measured)
    pts = points(acc, fidelity, hardware)
    fp32 = acc["fp32"]
    sizes = sorted({f"{p['rows']}x{p['cols']}" for p in pts})
    title = (f"ESSOP configurations: accuracy gap ({args.accuracy.parent.name}, FP32 {_percent(fp32.get('mean_test_acc'))} % "
             f"over {fp32.get('rows')} row(s)) and gradient fidelity (essop fidelity)\nagainst efficiency of "
             f"{', '.join(sizes)} arrays vs the FP16 multiplier ({base['stages']} stages), {base['library']}")
    plot(pts, args.out, title)
    text = markdown(pts)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

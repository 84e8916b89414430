"""Accuracy table and curves from training run folders: `python -m essop.training.report RUN... --png PATH`.

Reads each run's config.json and log.json (written by `essop train`) and prints one Markdown row per run."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    hist = json.loads((run / "log.json").read_text())
    o = cfg["options"]
    label = o["mode"] if o["mode"] == "fp32" else f"{o['mode']} BL {o['essop']['bl']} {o['essop']['sharing']}"
    return {"run": run.name, "label": label, "history": hist, "device": cfg["device"], "options": o}


def row(r: dict) -> str:
    h = r["history"]
    last = h[-1]
    return (f"| {r['label']} | {r['device']} | {len(h)} | {100 * last['train_acc']:.1f} | "
            f"{100 * last['test_acc']:.1f} | {100 * max(x['test_acc'] for x in h):.1f} | {last['wall_s']:.0f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--png")
    a = p.parse_args(argv)
    runs = [load(Path(r)) for r in a.runs]
    print("| run | device | epochs | train acc (%) | test acc (%) | best test acc (%) | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(row(r))
    if a.png:
        from essop.training.train import plot_curves
        plot_curves([(r["label"], r["history"]) for r in runs], Path(a.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())

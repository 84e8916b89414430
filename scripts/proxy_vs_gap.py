"""How well a fidelity proxy ranks the accuracy campaign's configurations: the Spearman rank correlation of
each proxy's median over layers with the rows' gaps to FP32 (a row with several seeds: the mean of their gaps),
over the configurations with a finished row:

    python scripts/proxy_vs_gap.py                       # the one-step proxies of `make fidelity`
    python scripts/proxy_vs_gap.py --accumulated docs/fidelity/accumulated/accumulated.csv
    python scripts/proxy_vs_gap.py --without "essop per_pair shared BL 16 sobol"

Reads docs/accuracy/r32-e15/table.json (the campaign's report), docs/fidelity/campaign/fidelity.csv (`essop
fidelity --protocol ...`) and, with --accumulated, an `essop fidelity --steps K` table (every step count).
Prints a markdown table (configuration, gap, the proxies) and each proxy's rank correlation with the gap."""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys

import numpy as np

from essop.training.fidelity import config_label


def ranks(values) -> np.ndarray:
    """Ranks 1..n, ties given their mean rank (as Spearman's coefficient needs)."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for value in np.unique(v):
        tie = v == value
        r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def _median(rows, config, key, **where):
    vals = [float(r[key]) for r in rows if r["config"] == config and all(r[k] == str(v) for k, v in where.items())]
    return statistics.median(vals) if vals else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="docs/accuracy/r32-e15/table.json", help="a campaign report's table.json")
    ap.add_argument("--fidelity", default="docs/fidelity/campaign/fidelity.csv",
                    help="one-step proxies: fidelity.csv of `essop fidelity --protocol` (first minibatch)")
    ap.add_argument("--accumulated", help="accumulated.csv of `essop fidelity --steps K`")
    ap.add_argument("--without", nargs="+", default=[], metavar="CONFIG",
                    help="leave these configurations out (as the table names them)")
    args = ap.parse_args(argv)
    try:
        table = json.loads(open(args.table).read())
        one = [r for r in csv.DictReader(open(args.fidelity)) if r["batch"] == "0"]
        acc = list(csv.DictReader(open(args.accumulated))) if args.accumulated else []
        gaps: dict[str, list[float]] = {}
        for row in table["rows"]:
            label = config_label(row["mode"], row["scaling"], row["sharing"], row["bl"], row["source"])
            if row["mode"] != "fp32" and row["status"] == "done" and label not in args.without:
                gaps.setdefault(label, []).append(row["gap_pp"])
    except (OSError, ValueError, KeyError) as exc:
        print(f"proxy_vs_gap: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    columns = [("one-step cosine", one, "cosine", {}), ("one-step output cosine", one, "out_cosine", {})]
    for k in sorted({int(r["steps"]) for r in acc}):
        columns += [(f"output cosine, {k} steps", acc, "out_cosine", {"steps": k})]
    configs = [c for c in gaps if all(_median(rows, c, key, **w) is not None for _, rows, key, w in columns)]
    left_out = [c for c in gaps if c not in configs]
    if len(configs) < 3:
        print(f"proxy_vs_gap: error: {len(configs)} finished configuration(s) with every proxy measured; "
              f"a rank correlation needs 3", file=sys.stderr)
        return 2
    gap = [statistics.mean(gaps[c]) for c in configs]
    values = {name: [_median(rows, c, key, **w) for c in configs] for name, rows, key, w in columns}
    print("| configuration | gap to FP32 (pp) | " + " | ".join(values) + " |")
    print("|---" * (len(values) + 2) + "|")
    for i, c in enumerate(configs):
        print(f"| {c} | {gap[i]:+.2f} | " + " | ".join(f"{v[i]:.3f}" for v in values.values()) + " |")
    print(f"\nSpearman rank correlation with the gap over {len(configs)} configurations (a row with several seeds: "
          f"the mean gap):")
    for name, v in values.items():
        print(f"- {name}: {spearman(v, gap):.2f}")
    if left_out:
        print(f"(left out, a proxy missing: {', '.join(left_out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

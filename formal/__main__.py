"""`python -m essop.formal [--work DIR] [NAME ...]`: run the formal proofs (all, or those named) and print a
Markdown table: property, configuration, method, depth, time, result. Exits 1 if any proof fails."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from essop.formal.proofs import CONFIGS, PROOFS
from essop.formal.sby import run_sby

METHOD = {"bmc": "BMC", "prove": "k-induction", "cover": "cover"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m essop.formal", description=__doc__)
    parser.add_argument("names", nargs="*", help="proof names (default: all); e.g. streams-A lfsr-B")
    parser.add_argument("--work", type=Path, default=Path("build/formal"), help="work folder (default %(default)s)")
    args = parser.parse_args(argv)
    known = {p.name: p for p in PROOFS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown proof(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in args.names] if args.names else PROOFS
    for key, cfg in CONFIGS.items():
        print(f"config {key}: {cfg.name}")
    print("| proof | property | config | method | depth | time (s) | result |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    for proof in chosen:
        result = run_sby(proof.harness(), args.work / proof.name, mode=proof.mode, depth=proof.depth)
        bad += not result.passed
        detail = "" if result.passed else f" {'; '.join(result.failed)} (log: {result.workdir})"
        print(f"| {proof.name} | {proof.description} | {proof.config} | {METHOD[proof.mode]} | {proof.depth} "
              f"| {result.seconds:.1f} | {result.status}{detail} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The hierarchical netlist's area split of an ESSOP synthesis build folder, as soon as Yosys has written it.

`essop synth` synthesises every array twice: with the hierarchy kept (``<build>/hier``: the area of each
``cell_*`` instance against the periphery) and flat (buffered and sized: the area, timing and power of the
tables). A large array's flat run can take far longer than its hierarchical one (64 x 64 on a 2-core VM), so
this reads the hierarchical result of a run that has not finished: total, cells, periphery, flip-flops,
gates, per instance. The flat totals differ by a few % (ABC's buffering and sizing; at 16 x 16 the flat area
is 4 % smaller), so these are not the tables' numbers.

    python scripts/hier_area.py build/synth64/nangate15_essop_64x64_..._fp16 [--top essop]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from essop.synth import yosys
from essop.synth.gatesim import liberty
from essop.synth.gatesim import netlist as gatesim_netlist


def hier_summary(build: Path, top: str = "essop") -> dict:
    """Area split of ``build/hier`` (stat.json, netlist.v and the Liberty files Yosys read there)."""
    hier = Path(build) / "hier"
    cells = liberty.parse_liberty(sorted(hier.glob("*.lib*")))
    flops = {name for name, c in cells.items() if c.ff}
    stat = json.loads((hier / "stat.json").read_text())
    _, area, _, n_cells, n_flops = yosys.subtree_totals(stat, top, flops)
    by_inst = yosys.instance_areas(stat, gatesim_netlist.submodule_instances(hier / "netlist.v", top), top)
    cell_area = sum(a for inst, a in by_inst.items() if inst.startswith("cell_"))
    return {"area_um2": area, "cells_area_um2": cell_area, "periphery_area_um2": area - cell_area,
            "n_flops": n_flops, "n_cells": n_cells, "by_instance": by_inst}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path, help="one configuration's build folder (it holds hier/)")
    ap.add_argument("--top", default="essop")
    args = ap.parse_args(argv)
    s = hier_summary(args.build, args.top)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in s.items() if k != "by_instance"}))
    print(json.dumps({k: round(v, 3) for k, v in s["by_instance"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

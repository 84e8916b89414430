"""Area, Fmax and energy columns for `essop sweep` (registered with essop.sim.sweep; slow, so opt-in:
`essop sweep --columns ... synth`). Library: the point's option 'lib' (default nangate15)."""
from __future__ import annotations

from essop.sim.sweep import SweepPoint, register_column
from essop.synth.compare import essop_row


def synth_column(point: SweepPoint) -> dict:
    row = essop_row(point.cfg, point.options.get("lib", "nangate15"), point.build_dir / "synth", seed=point.seed)
    return {
        "area (um^2)": round(row["area_um2"], 1),
        "cells area (um^2)": round(row["cells_area_um2"], 1),
        "periphery area (um^2)": round(row["periphery_area_um2"], 1),
        "Fmax (GHz)": round(row["fmax_ghz"], 3),
        "energy/product (fJ)": round(row["energy_per_product_fj"], 2),
        "products/s/um^2": f"{row['throughput_per_area']:.4g}",
    }


register_column("synth", synth_column, default=False,
                help="Yosys + OpenSTA area, Fmax and energy per product (slow; library: nangate15)")

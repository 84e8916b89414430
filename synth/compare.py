"""ESSOP arrays against the FP16 multiplier baseline on one cell library: rows of metrics, tables, plots.

Definitions (docs/hardware.md repeats them with the numbers):

- product unit: what makes one outer-product element delta_i * x_j. ESSOP: one array cell (AND gate + up/down
  counter) plus its 1/(m*n) share of the periphery. FP16: one multiplier (the fully parallel FP16 outer-product
  array is m*n of them; its area is m*n multipliers, which the flow checks on a 2 x 2 array).
- throughput: products per second. FP16: one product per multiplier per cycle at its Fmax. ESSOP: m*n products
  per BL cycles at its Fmax (bitstream-bound: groups of many pairs, output drain amortised). With acc_depth = 1
  every pair also drains m rows: ``cycles_per_pair_acc1`` = ``EssopArray.steady_state_cycles_per_group(1)``
  (readout 'shift': BL + m + 1; 'shadow': max(BL + 1, m + 1), the drain overlapping the next pair), and
  ``cycles_per_pair_sched`` is the configuration's own schedule, steady_state_cycles_per_group(acc_depth) per
  pair.
- area efficiency: throughput / area (products/s/um^2). Energy efficiency: products per joule
  (1 / energy per product).
- energy per product: energy per clock cycle (dynamic power at the measured activity x period, plus leakage
  x the Fmax period) x cycles per pair / (m*n); ``energy_per_product_acc1_fj`` uses the acc_depth = 1 cycles.
  The activity is measured over the acc_depth = 1 schedule (read-out cycles included) in both cases.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from essop.config import EssopConfig
from essop.golden.workload import operands
from essop.synth.activity import essop_activity, fp16_mul_activity, fp16_outer_activity
from essop.synth.flow import synthesize

__all__ = ["essop_row", "fp16_row", "fp16_outer_row", "comparison", "FIELDS"]

FIELDS = ["design", "library", "rows", "cols", "bl", "sharing", "stages", "area_um2", "cells_area_um2",
          "periphery_area_um2", "area_per_product_unit_um2", "n_cells", "n_flops", "fmax_ghz",
          "cycles_per_pair", "cycles_per_pair_acc1", "products_per_ns", "throughput_per_area",
          "energy_per_cycle_pj", "energy_per_product_fj", "energy_per_product_acc1_fj", "toggle_rate",
          "energy_per_product_global_fj", "net_activity_mean", "sequential_power_share", "flops_from_vcd",
          "flop_check", "clock_floor_share", "energy_per_product_gated_est_fj", "gating_cells", "acc_depth", "scaling", "output_format", "rng", "cell", "clock_gating",
          "icg_cells", "icg_area_um2", "cycles_per_pair_sched",
          "products_per_s_per_um2_sched", "energy_per_product_sched_fj", "readout"]

#: Vector pairs simulated to measure activity (ESSOP: each takes BL + m + 1 cycles; FP16: one cycle).
_ESSOP_PAIRS = 6
_FP16_PAIRS = 400
#: The activity testbenches' clock period (essop.synth.activity) in VCD time units (fs): a combinational
#: design's inputs change once per period.
_VCD_PERIOD_FS = 10_000_000


def _row(design, res, rows, cols, bl, sharing, stages, cycles_per_pair, cycles_acc1, cells_area):
    products = rows * cols
    per_s = products * res.fmax_hz / cycles_per_pair
    return {
        "design": design, "library": res.library, "rows": rows, "cols": cols, "bl": bl, "sharing": sharing,
        "stages": stages, "area_um2": res.area_um2, "cells_area_um2": cells_area,
        "periphery_area_um2": res.area_um2 - cells_area, "area_per_product_unit_um2": res.area_um2 / products,
        "n_cells": res.n_cells, "n_flops": res.n_flops, "fmax_ghz": res.fmax_hz / 1e9,
        "cycles_per_pair": cycles_per_pair, "cycles_per_pair_acc1": cycles_acc1,
        "products_per_ns": per_s * 1e-9, "throughput_per_area": per_s / res.area_um2,
        "energy_per_cycle_pj": res.energy_per_cycle_j * 1e12,
        "energy_per_product_fj": res.energy_per_cycle_j * cycles_per_pair / products * 1e15,
        "energy_per_product_acc1_fj": res.energy_per_cycle_j * cycles_acc1 / products * 1e15,
        "toggle_rate": res.toggle_rate,
        "energy_per_product_global_fj": res.energy_per_cycle_global_j * cycles_per_pair / products * 1e15,
        "net_activity_mean": res.activity.get("net_activity_mean", ""),
        "sequential_power_share": res.power_by_group["Sequential"] / res.power_by_group["Total"],
        # Flip-flops whose Q the VCD names (the rest are simulated from their D): of n_flops.
        "flops_from_vcd": res.activity.get("flops_from_vcd", ""),
        "flop_check": res.activity.get("flop_check", ""),
        # Power that no switching activity removes: flip-flops' clock pins toggling every cycle (clock gating
        # would be the only way to cut it).
        "clock_floor_share": (res.activity["clock_floor_w"] / res.power_dynamic_w if res.activity else ""),
        # Estimate, not synthesised: ideal-enable clock gating per register (essop.synth.power.clock_gating_estimate).
        "energy_per_product_gated_est_fj": ((res.energy_per_cycle_j - res.activity["gating_saving_w"] * res.sta_period_s)
                                            * cycles_per_pair / products * 1e15 if res.activity else ""),
        "gating_cells": res.activity.get("gating_cells", ""),
        # Synthesised clock gating (EssopConfig.clock_gating): the netlist's gating cells, counted in area_um2.
        "icg_cells": res.n_icg, "icg_area_um2": res.icg_area_um2,
    }


def essop_row(cfg: EssopConfig, lib: str, build_root, seed: int = 0) -> dict:
    """Synthesise ``EssopArray(cfg)`` (hierarchy kept: cells vs periphery) and measure it."""
    from essop.hdl.array import EssopArray  # the array's RTL is imported only when an ESSOP row is asked for

    array = EssopArray(cfg)
    rng = np.random.default_rng(seed)
    # At least two full accumulation groups, so the read-out is amortised as the schedule amortises it.
    xs, ds = operands(rng, max(_ESSOP_PAIRS, 2 * cfg.acc_depth), cfg.rows, cfg.cols)
    build = Path(build_root) / f"{lib}_{cfg.name}"
    rate = essop_activity(array, xs, ds, build / "activity.vcd")
    res = synthesize(EssopArray(cfg), "essop", lib, build, split=True, toggle_rate=rate,
                     vcd=build / "activity.vcd", clock_gating=cfg.clock_gating)
    cells = sum(a for inst, a in res.area_by_instance.items() if inst.startswith("cell_"))
    acc1 = array.steady_state_cycles_per_group(1)
    row = _row("essop", res, cfg.rows, cfg.cols, cfg.bl, cfg.sharing, "", array.cycles_per_pair, acc1, cells)
    # The schedule this configuration runs: groups of acc_depth pairs, each group read out once.
    full = array.steady_state_cycles_per_group(cfg.acc_depth) / cfg.acc_depth
    row |= {"acc_depth": cfg.acc_depth, "scaling": cfg.scaling, "output_format": cfg.output_format, "cell": cfg.cell,
            "clock_gating": cfg.clock_gating, "rng": cfg.rng_label, "readout": cfg.readout,
            "cycles_per_pair_sched": full,
            "products_per_s_per_um2_sched": row["throughput_per_area"] * cfg.bl / full,
            "energy_per_product_sched_fj": res.energy_per_cycle_j * full / (cfg.rows * cfg.cols) * 1e15}
    return row


def fp16_row(stages: int, lib: str, build_root, seed: int = 0) -> dict:
    """One FP16 multiplier (a product unit of the parallel FP16 outer-product array), flattened."""
    from essop.hdl.fp16_mul import Fp16Multiplier

    rng = np.random.default_rng(seed)
    # Multiplier (i, j) of the array sees delta_i and x_j of consecutive pairs, one pair per cycle.
    xs, ds = operands(rng, _FP16_PAIRS, 1, 1)
    build = Path(build_root) / f"{lib}_fp16_mul_s{stages}"
    rate = fp16_mul_activity(Fp16Multiplier(stages), ds[:, 0], xs[:, 0], build / "activity.vcd")
    res = synthesize(Fp16Multiplier(stages), "fp16_mul", lib, build, toggle_rate=rate,
                     clock="clk" if stages else None, vcd=build / "activity.vcd", vcd_period_fs=_VCD_PERIOD_FS)
    return _row("fp16_mul", res, 1, 1, "", "", stages, 1, 1, res.area_um2)


def fp16_outer_row(rows: int, cols: int, stages: int, lib: str, build_root, seed: int = 0) -> dict:
    """The fully parallel FP16 outer-product array (rows x cols multipliers), hierarchy kept."""
    from essop.hdl.fp16_outer import Fp16Outer

    rng = np.random.default_rng(seed)
    xs, ds = operands(rng, _FP16_PAIRS // 4, rows, cols)
    build = Path(build_root) / f"{lib}_fp16_outer_{rows}x{cols}_s{stages}"
    rate = fp16_outer_activity(Fp16Outer(rows, cols, stages), xs, ds, build / "activity.vcd")
    res = synthesize(Fp16Outer(rows, cols, stages), "fp16_outer", lib, build, split=True, toggle_rate=rate,
                     clock="clk" if stages else None, vcd=build / "activity.vcd", vcd_period_fs=_VCD_PERIOD_FS)
    cells = sum(a for inst, a in res.area_by_instance.items() if inst.startswith("mul_"))
    return _row("fp16_outer", res, rows, cols, "", "", stages, 1, 1, cells)


def comparison(essop: dict, fp16: dict) -> dict:
    """ESSOP against the FP16 baseline, both definitions of 'better' spelled out."""
    area_ratio = essop["throughput_per_area"] / fp16["throughput_per_area"]
    energy_ratio = fp16["energy_per_product_fj"] / essop["energy_per_product_fj"]
    return {
        "design": f"essop {essop['rows']}x{essop['cols']} BL{essop['bl']} {essop['sharing']}"
                  + (f" {essop['rng']}" if essop.get("rng", "lfsr") != "lfsr" else ""),
        "baseline": f"fp16_mul stages={fp16['stages']}",
        "library": essop["library"],
        "area_eff_ratio": area_ratio,
        "area_eff_gain_pct": 100 * (area_ratio - 1),
        "area_eff_saving_pct": 100 * (1 - 1 / area_ratio),
        "energy_eff_ratio": energy_ratio,
        "energy_eff_gain_pct": 100 * (energy_ratio - 1),
        "energy_saving_pct": 100 * (1 - 1 / energy_ratio),
        "area_per_product_unit_ratio": fp16["area_per_product_unit_um2"] / essop["area_per_product_unit_um2"],
        "cycles_per_product_unit_result": essop["cycles_per_pair"],
    }

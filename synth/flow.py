"""ASIC flow: Amaranth -> RTLIL -> Yosys on a Liberty library -> OpenSTA timing and power, by stage.

One call, :func:`synthesize`, takes an Amaranth component and returns a :class:`SynthResult`: total cell area,
area per submodule instance (hierarchy kept, so an ESSOP array splits into its ``cell_i_j`` counters and the
periphery), the critical path (minimum clock period) and the power at the switching activity measured in
simulation. The stages, one file each:

| stage | file | what it does here |
|---|---|---|
| libraries | ``libraries.py`` | the Liberty files of ``lib``, unpacked into the build folder; their units |
| Yosys | ``yosys.py`` | RTLIL -> flat netlist (buffered and sized) and, with ``split``, a hierarchical one; areas |
| OpenSTA | ``sta.py`` | Tcl script, timing, power at one global activity and per instance at two activities |
| gate-level simulation | ``gatesim/`` | the RTL's VCD -> every net's toggle rate on the flat netlist |
| power | ``power.py`` | each instance interpolated to its own nets' rates; the clock-gating estimate |

Energy per cycle = dynamic power x the nominal clock period (dynamic power scales with 1/period at a fixed
per-cycle activity) + leakage power x the achievable period. Without a VCD the design-wide ``toggle_rate`` is
set as the global activity of every net (a one-number activity model, kept for comparison).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from essop.synth import libraries, sta, yosys
from essop.synth import power as power_stage
from essop.synth.gatesim import liberty, simulate
from essop.synth.gatesim import netlist as gatesim_netlist
from essop.synth.gatesim import vcd as gatesim_vcd
from essop.synth.libraries import Library, library

__all__ = ["SynthResult", "synthesize"]


@dataclass
class SynthResult:
    top: str
    library: str
    area_um2: float
    """Total cell area (all instances, hierarchy included)."""
    sequential_area_um2: float
    n_cells: int
    n_flops: int
    area_by_instance: dict[str, float]
    """Area of each submodule instance of the top (its whole subtree), plus '<top>' for the top's own cells."""
    min_period_s: float
    """Critical path: the smallest clock period with no setup violation (inputs/outputs at the clock edge)."""
    power_dynamic_w: float
    power_leakage_w: float
    sta_period_s: float
    """Clock period the power was reported at."""
    power_by_group: dict[str, float] = field(default_factory=dict)
    toggle_rate: float = 0.0
    """Design-wide mean toggle rate of the RTL's signal bits (the one-number activity model)."""
    power_dynamic_global_w: float = 0.0
    """Dynamic power with every net at ``toggle_rate`` (the one-number activity model), for comparison."""
    n_icg: int = 0
    """Integrated clock-gating cells in the flat netlist (clock gating on)."""
    icg_area_um2: float = 0.0
    activity: dict = field(default_factory=dict)
    """Per-net activity facts (essop.synth.gatesim.simulate) when a VCD was given: mean net rate, flip-flops found in
    the VCD, the D/Q self-check, ...; empty when power is at the global ``toggle_rate``."""

    @property
    def fmax_hz(self) -> float:
        return 1.0 / self.min_period_s

    @property
    def energy_per_cycle_j(self) -> float:
        """Energy of one clock cycle at the measured activity, running at fmax."""
        return self.power_dynamic_w * self.sta_period_s + self.power_leakage_w * self.min_period_s

    @property
    def energy_per_cycle_global_j(self) -> float:
        """As energy_per_cycle_j with every net at the global toggle rate (the one-number activity model)."""
        return self.power_dynamic_global_w * self.sta_period_s + self.power_leakage_w * self.min_period_s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"fmax_hz": self.fmax_hz, "energy_per_cycle_j": self.energy_per_cycle_j}


def synthesize(component, top: str, lib: str | Library, build_dir, *, split: bool = False,
               toggle_rate: float = 0.1, sta_period: float | None = None,
               clock: str | None = "clk", vcd=None, vcd_period_fs: int | None = None,
               clock_gating: bool = False) -> SynthResult:
    """Synthesise ``component`` as module ``top``, time it and estimate its power.

    Timing, power and ``area_um2`` come from a flattened netlist mapped with ABC's buffering and gate sizing.
    ``split``: also synthesise with the hierarchy kept (no buffering); ``area_by_instance`` gives each submodule
    instance its share of the hierarchical netlist's area, scaled to the flat total ('<top>': the top's own
    logic).
    ``toggle_rate``: toggles per net per clock cycle (measured by essop.synth.activity). ``sta_period`` in
    library time units (default: 1 ns). ``clock`` None: a combinational design, timed from inputs to outputs
    against a virtual clock. ``vcd``: the RTL simulation's VCD; with it, power is per net (stages 4 and 5).
    ``clock_gating``: the flat netlist's registers with enables get the library's clock-gating cells
    (essop.synth.yosys.clockgate_command); the hierarchical area split is made without them and the gating
    cells' area counts as the top's own ('<top>')."""
    lib = library(lib) if isinstance(lib, str) else lib
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    # Stage 1, libraries: the Liberty text in the build folder, its units, its cells (which are flip-flops).
    libs = libraries.unpack(lib, build)
    units = libraries.units(libs)
    lib_cells = liberty.parse_liberty(libs)
    flop_cells = {name for name, c in lib_cells.items() if c.ff}
    gating = ""
    if clock_gating:
        if not lib.icg_cell:
            raise ValueError(f"library {lib.name!r} names no clock-gating cell; clock gating needs one")
        icg_pins = lib_cells[lib.icg_cell]
        gating = yosys.clockgate_command(lib.icg_cell, icg_pins.gate_enable_pin, icg_pins.gated_clock_pin,
                                         icg_pins.gate_out_pin, icg_pins.gate_test_pin)
    design = build / "design.il"
    design.write_text(rtlil.convert(component, name=top))
    # Stage 2, Yosys: the hierarchical netlist (area per submodule instance), then the flat one.
    by_inst: dict[str, float] = {}
    if split:
        hier = build / "hier"
        hier.mkdir(exist_ok=True)
        hlibs = libraries.unpack(lib, hier)
        shutil.copyfile(design, hier / design.name)
        hstat = yosys.run_yosys(hier / design.name, top, hlibs, hier, flatten=False)
        _, hier_area, _, _, _ = yosys.subtree_totals(hstat, top, flop_cells)
        instances = gatesim_netlist.submodule_instances(hier / "netlist.v", top)
        by_inst = yosys.instance_areas(hstat, instances, top)
    # The load is given in fF in the table; ABC takes it in the library's capacitance unit.
    cap_unit_ff = round(units.capacitance_f / 1e-15, 9)
    stat = yosys.run_yosys(design, top, libs, build, flatten=True, buffer=(lib.buffer_cell, lib.load_ff / cap_unit_ff),
                           clockgate=gating)
    _, area, seq, n_cells, flops = yosys.subtree_totals(stat, top, flop_cells)
    flat_cells = {ctype.lstrip("\\"): count for ctype, count in
                  next(info for name, info in stat["modules"].items() if name.lstrip("\\") == top)
                  ["num_cells_by_type"].items()}
    icgs = {ctype: count for ctype, count in flat_cells.items() if ctype in lib_cells and lib_cells[ctype].clock_gating}
    n_icg, icg_area = sum(icgs.values()), sum(count * lib_cells[ctype].area for ctype, count in icgs.items())
    if by_inst:
        # The two netlists differ a little (buffer trees, sizing, cross-boundary optimisation): give each
        # instance its hierarchical share of the flat netlist's area. A module boundary stops a row's cells
        # sharing a gating cell, so the gating cells stay out of the split (in '<top>').
        scale = (area - icg_area) / hier_area
        by_inst = {inst: a * scale for inst, a in by_inst.items()}
    by_inst["<top>"] = area - sum(by_inst.values())
    # Stage 3, OpenSTA: timing, power at the design-wide rate and, with a VCD, per instance at two rates.
    period = sta_period if sta_period is not None else 1e-9 / units.time_s
    has_clock = clock is not None and flops > 0
    if not 0.0 <= toggle_rate <= 1.0:
        raise ValueError(f"toggle_rate must be in [0, 1] toggles per cycle, not {toggle_rate!r}")
    icg = None
    if vcd is not None and has_clock and lib.icg_cell:
        icg = (liberty.cell_library(libs, lib.icg_cell), lib.icg_cell, lib_cells[lib.icg_cell].gated_clock_pin)
    out = sta.run_sta(build, top, libs, period, toggle_rate, clock if has_clock else None,
                      per_instance=vcd is not None, icg=icg, gated_clocks=n_icg > 0)
    min_period, power = sta.parse_checks(out, period), sta.parse_power(out)
    internal, switching, leakage = power["Total"]
    global_dynamic = internal + switching
    net_info = {}
    if vcd is not None:
        # Stage 4, gate-level simulation: every net's toggle rate from the RTL's VCD.
        netlist = gatesim_netlist.parse_netlist(build / "netlist.v", top)
        bits, cycles = gatesim_vcd.sample(vcd, clock if has_clock else None, vcd_period_fs)
        act = simulate.net_activity(netlist, lib_cells, bits, cycles, clock)
        # Stage 5, power: every instance at its own nets' rates.
        pn = power_stage.per_net_power(out, netlist, lib_cells, act)
        internal, switching, leakage = pn["internal"], pn["switching"], pn["leakage"]
        power = {"Sequential": (pn["sequential"], 0.0, 0.0),
                 "Combinational": (pn["dynamic"] - pn["sequential"], 0.0, 0.0),
                 "Total": (internal, switching, leakage)}
        net_info = {"net_activity_mean": act.mean(), "nets": len(act.rate), "flops_from_vcd": act.flops_from_vcd,
                    "flops": act.flops, "flop_check": act.mapping_check, "inputs_from_vcd": act.inputs_from_vcd,
                    "inputs": act.inputs, "cycles": act.cycles, "clock_floor_w": pn["clock_floor"],
                    "gating_saving_w": pn["gating_saving"], "gating_cells": pn["gating_cells"]}
    result = SynthResult(
        top=top, library=lib.name, area_um2=area, sequential_area_um2=seq, n_cells=n_cells, n_flops=flops,
        area_by_instance=by_inst, min_period_s=min_period * units.time_s,
        power_dynamic_w=internal + switching, power_leakage_w=leakage, sta_period_s=period * units.time_s,
        power_by_group={k: sum(v) for k, v in power.items()}, toggle_rate=toggle_rate,
        power_dynamic_global_w=global_dynamic, activity=net_info, n_icg=n_icg, icg_area_um2=icg_area)
    (build / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result

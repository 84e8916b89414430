"""OpenSTA stage: timing (the critical path) and power reports of a flat netlist, as a Tcl script and parsers.

The Debian OpenSTA 2.0.17 (``/usr/bin/sta``, package ``opensta``) reads the Liberty files and the netlist,
times it against one clock (a virtual one for a combinational design, inputs and outputs at the clock edge)
and reports power at a global switching activity. Timing comes first (``report_checks``), since the power
calculation uses the slews. Numbers in its reports are in the library's time unit; powers in watts.

The script marks each report with a ``puts "@@TAG"`` line so the parsers can find them in one output:
``@@CHECKS`` (timing), ``@@POWER`` (design power at the design-wide rate), ``@@INST0``/``@@INST1`` (every
instance's power at activity 0 and ``A_REF``, for the per-net interpolation in essop.synth.power) and
``@@ICG`` (one clock-gating cell alone on the clock, for the clock-gating estimate).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from essop.synth.yosys import vname

__all__ = ["A_REF", "sta_version", "sta_script", "run_sta", "parse_checks", "parse_power", "instance_power"]

#: Uniform activity of the second per-instance power report (any value in (0, 1]: power is linear in it).
A_REF = 0.5


def sta_version() -> str:
    out = subprocess.run(["sta", "-version"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def sta_script(build: Path, top: str, libs: list[Path], period: float, toggle_rate: float, clock: str | None,
               per_instance: bool = False, icg: tuple[str, str, str] | None = None,
               gated_clocks: bool = False) -> str:
    """The Tcl script: ``period`` in library time units; ``clock`` None: a virtual clock (combinational
    design); ``icg``: (library name, clock-gating cell, its clock pin) to probe, with ``per_instance``;
    ``gated_clocks``: the netlist has clock-gating cells (see below)."""
    lines = [f"read_liberty {p}" for p in libs]
    lines += [f"read_verilog {build / 'netlist.v'}", f"link_design {vname(top)}"]
    if clock:
        lines += [f"create_clock -name clk -period {period} [get_ports {clock}]",
                  f"set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports {clock}]]"]
    else:
        lines += [f"create_clock -name clk -period {period}",
                  "set_input_delay 0 -clock clk [all_inputs]"]
    if gated_clocks:
        # The flow has no clock tree: the clock port reaches every flip-flop with a zero transition. A gating
        # cell would instead drive its whole row's clock pins alone, and the slow edge would multiply their
        # internal power (measured: 5x at 16 x 16); a clock tree would buffer it. Every flip-flop keeps the
        # ideal edge; the gating cell's own load (its output net) stays in its power.
        lines += ["set_assigned_transition 0 [all_registers -clock_pins]"]
    lines += ["set_output_delay 0 -clock clk [all_outputs]",
              "puts \"@@CHECKS\"",
              "report_checks -path_delay max -digits 4",
              # Every net toggles at the design-wide rate measured in simulation (essop.synth.activity); the
              # clock keeps its own two transitions per period.
              f"set_power_activity -global -activity {toggle_rate:.6g} -duty 0.5",
              "puts \"@@POWER\"", "report_power -digits 8"]
    if per_instance:
        # Per-net activity (essop.synth.power): each instance's power at two uniform activities; the flow
        # interpolates every instance to its own nets' measured rates.
        for tag, act in (("@@INST0", 0.0), ("@@INST1", A_REF)):
            lines += [f"set_power_activity -global -activity {act} -duty 0.5", f"puts \"{tag}\"",
                      "report_power -instances [get_cells *] -digits 8"]
        if icg:
            # One clock-gating cell on the clock, alone (its enable unconnected): its clock-driven power.
            libname, cell, clock_pin = icg
            lines += [f"make_instance essop_icg_probe {libname}/{cell}",
                      f"connect_pin {clock} essop_icg_probe/{clock_pin}",
                      "set_power_activity -global -activity 0.0 -duty 0.5", "puts \"@@ICG\"",
                      "report_power -instances [get_cells essop_icg_probe] -digits 8"]
    return "\n".join(lines) + "\n"


def run_sta(build: Path, top: str, libs: list[Path], period: float, toggle_rate: float, clock: str | None,
            per_instance: bool = False, icg: tuple[str, str, str] | None = None,
            gated_clocks: bool = False) -> str:
    """Run the script of ``sta_script`` on ``build/netlist.v``; its standard output (also in sta.log)."""
    (build / "sta.tcl").write_text(sta_script(build, top, libs, period, toggle_rate, clock, per_instance, icg,
                                              gated_clocks))
    proc = subprocess.run(["sta", "-no_init", "-no_splash", "-exit", str(build / "sta.tcl")],
                          capture_output=True, text=True, cwd=build)
    (build / "sta.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "Error" in proc.stdout + proc.stderr:
        raise RuntimeError(f"OpenSTA failed on {top} (see {build / 'sta.log'}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout


def parse_checks(text: str, period: float) -> float:
    """The minimum period (library time units): the clock period minus the worst setup slack."""
    checks = text.split("@@CHECKS", 1)[1].split("@@POWER", 1)[0]
    m = re.search(r"(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", checks)
    if m is None:
        raise RuntimeError("OpenSTA reported no constrained path")
    return period - float(m.group(1))


def parse_power(text: str) -> dict[str, tuple[float, float, float]]:
    """The design power report: group (Sequential, Combinational, Macro, Pad, Total) -> (internal, switching,
    leakage) in watts."""
    power = {}
    for line in text.split("@@POWER", 1)[1].splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] in ("Sequential", "Combinational", "Macro", "Pad", "Total"):
            power[f[0]] = (float(f[1]), float(f[2]), float(f[3]))
    if "Total" not in power:
        raise RuntimeError("OpenSTA printed no power report")
    return power


def instance_power(text: str, tag: str) -> dict[str, tuple[float, float, float]]:
    """The per-instance power report after ``tag``: instance -> (internal, switching, leakage) in watts."""
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

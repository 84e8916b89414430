"""essop.synth.libraries: the shipped libraries are found without ../shared, ESSOP_PDK overrides them, every
table entry matches its Liberty files (units, flip-flops, the named buffer and clock-gating cells)."""
import gzip
import re
from pathlib import Path

import pytest

from essop.synth import libraries
from essop.synth.gatesim.liberty import parse_liberty
from essop.synth.libraries import BUNDLED_PDK, LIBRARIES, library


def test_unknown_library():
    with pytest.raises(ValueError) as e:
        library("nangate7")
    assert str(e.value) == f"unknown library 'nangate7'; known libraries: {', '.join(LIBRARIES)}"
    with pytest.raises(TypeError, match="library must be a str, not 15"):
        library(15)


def test_default_is_the_bundled_folder(monkeypatch):
    monkeypatch.delenv("ESSOP_PDK", raising=False)
    assert libraries.pdk_dir() == BUNDLED_PDK == Path(libraries.__file__).resolve().parent / "pdk"
    for lib in LIBRARIES.values():
        for path in lib.paths():
            assert path.is_file() and path.suffix == ".gz", path


def test_every_file_has_its_provenance_and_license():
    readme = (BUNDLED_PDK / "README.md").read_text()
    for lib in LIBRARIES.values():
        folder = BUNDLED_PDK / lib.name
        assert any(p.name.startswith(("LICENSE", "NanGate_15nm_LICENSE")) for p in folder.iterdir()), folder
        for f in lib.files:
            assert Path(f).name in readme, f
    assert "Apache-2.0" in readme and "BSD-3-Clause" in readme


def test_essop_pdk_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ESSOP_PDK", str(tmp_path))
    assert library("nangate45").paths() == [tmp_path / "nangate45/nangate45_typ.lib.gz"]
    with pytest.raises(FileNotFoundError, match=re.escape(f"not found: {tmp_path}/nangate45/nangate45_typ.lib.gz")):
        libraries.unpack(library("nangate45"), tmp_path)


def test_unpack_gunzips_once(monkeypatch, tmp_path):
    pdk = tmp_path / "pdk"
    (pdk / "nangate45").mkdir(parents=True)
    text = 'library (x) {\n  time_unit : "1ns";\n}\n'
    with gzip.open(pdk / "nangate45/nangate45_typ.lib.gz", "wt") as f:
        f.write(text)
    monkeypatch.setenv("ESSOP_PDK", str(pdk))
    build = tmp_path / "build"
    build.mkdir()
    (out,) = libraries.unpack(library("nangate45"), build)
    assert out == build / "nangate45_typ.lib" and out.read_text() == text
    out.write_text("kept")
    libraries.unpack(library("nangate45"), build)
    assert out.read_text() == "kept"


#: Units of each shipped library as its header states them, in s, F, W (synth/pdk/README.md).
UNITS = {"nangate15": (1e-12, 1e-15, 1e-12), "nangate45": (1e-9, 1e-15, 1e-9),
         "asap7": (1e-12, 1e-15, 1e-12), "sky130hd": (1e-9, 1e-12, 1e-9)}
#: A plain D flip-flop and a latch of each library: the first must be a flip-flop, the second must not.
FLOP_AND_LATCH = {"nangate15": ("DFFRNQ_X1", "LHQ_X1"), "nangate45": ("DFF_X1", "DLH_X1"),
                  "asap7": ("DFFHQNx1_ASAP7_75t_R", "DHLx1_ASAP7_75t_R"),
                  "sky130hd": ("sky130_fd_sc_hd__dfxtp_1", "sky130_fd_sc_hd__dlxtp_1")}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LIBRARIES))
def test_library_table_matches_its_files(name, tmp_path, monkeypatch):
    monkeypatch.delenv("ESSOP_PDK", raising=False)
    lib = library(name)
    files = libraries.unpack(lib, tmp_path)
    u = libraries.units(files)
    assert (u.time_s, u.capacitance_f, u.leakage_power_w) == UNITS[name]
    cells = parse_liberty(files)
    flop, latch = FLOP_AND_LATCH[name]
    assert cells[flop].ff and cells[flop].next_state and not cells[latch].ff and cells[latch].latch
    assert cells[lib.buffer_cell].outputs and not cells[lib.buffer_cell].sequential
    icg = cells[lib.icg_cell]
    assert icg.clock_gating.startswith("latch_posedge") and icg.gated_clock_pin in icg.inputs
    # The pins Yosys' clockgate and the gate-level simulation connect (sky130's dlclkp has no test enable).
    assert icg.gate_enable_pin in icg.inputs and icg.gate_out_pin in icg.outputs
    assert (icg.gate_test_pin is None) == (name == "sky130hd") and icg.gate_test_pin in icg.inputs + [None]
    # Every flip-flop has exactly one next_state and clock pin the simulation can use.
    for cname, c in cells.items():
        if c.ff:
            assert c.next_state and c.clock_pins, cname

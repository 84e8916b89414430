"""`essop` commands: options come from EssopConfig's fields for every command that takes a configuration (synth
included); the sweep's table is open to new columns and its options reach them; bad input is one line and
exit status 2."""
from __future__ import annotations

import dataclasses
import json

import pytest

from essop.app.cli import main
from essop.config import EssopConfig
from essop.app import sweep


def test_every_config_field_has_an_option(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(EssopConfig):
        assert "--" + field.name.replace("_", "-") in text
        assert f"(default: {field.default!r})" in " ".join(text.split())


def test_generate_writes_verilog_and_config_json(tmp_path):
    out = tmp_path / "a" / "essop.v"
    assert main(["generate", "--rows", "2", "--cols", "3", "--bl", "8", "--sharing", "per_element",
                 "--lfsr-restart", "--lfsr-seed-x", "0x1234", "-o", str(out)]) == 0
    cfg = EssopConfig.from_json((tmp_path / "a" / "essop.json").read_text())
    assert cfg == EssopConfig(rows=2, cols=3, bl=8, sharing="per_element", lfsr_restart=True, lfsr_seed_x=0x1234)
    assert "module essop_array" in out.read_text()


def test_generate_from_config_file_with_override(tmp_path):
    src = tmp_path / "c.json"
    src.write_text(EssopConfig(rows=3, cols=1, q=5).to_json())
    assert main(["generate", "--config", str(src), "--q", "6", "-o", str(tmp_path / "b.v")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["q"] == 6
    assert json.loads((tmp_path / "b.json").read_text())["rows"] == 3


@pytest.mark.parametrize("argv, message", [
    (["--bl", "12"], "bl must be a power of two, not 12"),
    (["--sharing", "both"], "sharing must be one of 'shared', 'per_element', not 'both'"),
    (["--acc-depth", "4"], "acc_depth > 1 (4) requires scaling='block'"),
    (["--readout", "double"], "readout must be one of 'shift', 'shadow', not 'double'"),
])
def test_generate_rejects_bad_values_with_the_config_message(tmp_path, capsys, argv, message):
    assert main(["generate", *argv, "-o", str(tmp_path / "x.v")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"essop generate: error: {message}")
    assert "Traceback" not in err
    assert not (tmp_path / "x.v").exists()


def test_register_column_checks():
    with pytest.raises(TypeError, match=r"^provider name must be a non-empty str, not ''$"):
        sweep.register_column("", lambda p: {})
    with pytest.raises(ValueError, match=r"^column provider 'cocotb' is already registered$"):
        sweep.register_column("cocotb", lambda p: {})


def test_sweep_rows_take_columns_from_registered_providers(tmp_path):
    """A provider registered from outside the sweep core adds its column to every row."""
    sweep.register_column("test_area", _fake_area, default=False, help="test only")
    try:
        base = EssopConfig(rows=2, cols=2, q=6)
        rows = sweep.run_sweep(base, [4, 16], columns=["estimator", "test_area"], jobs=1, seed=3,
                               build_root=tmp_path, options={"draws": 40})
    finally:
        sweep._PROVIDERS.pop("test_area")
    assert [(r["sharing"], r["BL"]) for r in rows] == [("per_element", 4), ("per_element", 16),
                                                       ("shared", 4), ("shared", 16)]
    assert [r["area"] for r in rows] == [4 * 2 * 2, 16 * 2 * 2, 4 * 2 * 2, 16 * 2 * 2]
    for sharing in ("shared", "per_element"):
        by_bl = {r["BL"]: r["RMSE vs FP64"] for r in rows if r["sharing"] == sharing}
        assert by_bl[16] < by_bl[4]
    png = sweep.plot(rows, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"^unknown column provider\(s\) 'nope'"):
        sweep.run_sweep(base, [4], columns=["nope"], build_root=tmp_path)


def _fake_area(point: sweep.SweepPoint) -> dict:
    return {"area": point.cfg.bl * point.cfg.rows * point.cfg.cols}


def test_sweep_command_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--bl", "2", "4", "--rows", "2", "--cols", "2", "--columns", "estimator",
                 "--draws", "20", "--out", str(out), "--build-dir", str(tmp_path / "b")]) == 0
    lines = (out / "sweep.csv").read_text().splitlines()
    # The first column names each point's random-number source (--rng, default lfsr).
    assert lines[0].startswith("source,BL,sharing,rows,cols,q,config,RMSE (SC),RMSE vs FP64")
    assert [line.split(",")[1:3] for line in lines[1:]] == [["2", "per_element"], ["4", "per_element"],
                                                            ["2", "shared"], ["4", "shared"]]
    assert {line.split(",")[0] for line in lines[1:]} == {"lfsr"}
    assert (out / "sweep.md").read_text().startswith("# ESSOP BL sweep")
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_takes_several_sources(tmp_path):
    """--rng lfsr sobol: one row per (source, sharing, BL), the source in its own column, configurations named."""
    out = tmp_path / "sweep"
    assert main(["sweep", "--bl", "4", "--rows", "2", "--cols", "2", "--columns", "estimator", "--rng", "lfsr",
                 "sobol", "--rng-shift", "--draws", "20", "--out", str(out), "--build-dir", str(tmp_path / "b")]) == 0
    lines = [line.split(",") for line in (out / "sweep.csv").read_text().splitlines()[1:]]
    assert [(v[0], v[2]) for v in lines] == [("lfsr+shift", "per_element"), ("lfsr+shift", "shared"),
                                             ("sobol+shift", "per_element"), ("sobol+shift", "shared")]
    assert all(v[6].endswith("_sobol_shift") == (v[0] == "sobol+shift") for v in lines)
    assert main(["sweep", "--bl", "4", "--rng", "halton", "--out", str(tmp_path)]) == 2


def test_sweep_and_stats_reject_a_bad_bl(tmp_path, capsys):
    assert main(["sweep", "--bl", "4", "12", "--out", str(tmp_path)]) == 2
    assert main(["stats", "--bl", "4", "6", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "essop sweep: error: bl must be a power of two, not 12" in err
    assert "essop stats: error: bl must be a power of two, not 6" in err


def test_stats_command_writes_docs_ready_tables(tmp_path):
    out = tmp_path / "stats"
    assert main(["stats", "--bl", "4", "16", "--rows", "2", "--cols", "3", "--draws", "24", "--out", str(out)]) == 0
    text = (out / "statistics.md").read_text()
    assert text.startswith("Generated by `essop stats --draws 24 --seed 2020 --bl 4 16`")
    for stem in ("bl", "slopes", "restart", "steps"):
        assert (out / f"{stem}.csv").exists() and (out / f"{stem}.md").exists()
    assert "| shared | 4..16 |" in text
    # Every source, its slope, the exact fixed-input bias and the plot.
    for source in ("lfsr", "sobol", "sobol+shift"):
        assert f"| {source} | shared | 4..16 |" in text and f"| {source} | per_element | 4..16 |" in text
        assert f"| {source}, shared |" in text and f"| {source}, per_element |" in text
    assert "| lfsr, w = 20 |" in text and "one 16-bit register" in text
    assert (out / "fixed_bias.csv").exists() and (out / "rmse_vs_bl.png").read_bytes()[:4] == b"\x89PNG"
    # Element words exist per_element only: one row each, no shared one.
    assert "| lfsr+words | per_element | 4..16 |" in text and "| lfsr+words, per_element |" in text
    assert "| lfsr+words | shared |" not in text and "| lfsr+words, shared |" not in text


def test_sweep_takes_element_words_as_an_axis(tmp_path, capsys):
    """--element-words: every LFSR per_element point also with element words, its own row and name; the shared
    points keep the shared array."""
    out = tmp_path / "sweep"
    assert main(["sweep", "--bl", "4", "8", "--rows", "2", "--cols", "3", "--columns", "estimator", "--rng", "lfsr",
                 "sobol", "--element-words", "--draws", "20", "--out", str(out),
                 "--build-dir", str(tmp_path / "b")]) == 0
    lines = [line.split(",") for line in (out / "sweep.csv").read_text().splitlines()[1:]]
    assert [(v[0], v[2], v[1]) for v in lines] == [
        ("lfsr", "per_element", "4"), ("lfsr", "per_element", "8"), ("lfsr", "shared", "4"), ("lfsr", "shared", "8"),
        ("lfsr+words", "per_element", "4"), ("lfsr+words", "per_element", "8"),
        ("sobol", "per_element", "4"), ("sobol", "per_element", "8"), ("sobol", "shared", "4"),
        ("sobol", "shared", "8")]
    assert all(v[6].endswith("_xw") == (v[0] == "lfsr+words") for v in lines)
    assert len({v[6] for v in lines}) == len(lines)


@pytest.mark.cocotb
def test_essop_verify_command(tmp_path, capsys):
    """`essop verify` generates into the build directory, simulates, prints the summary, exits 0 on a pass."""
    assert main(["verify", "--rows", "1", "--cols", "2", "--bl", "2", "--simulators", "icarus", "--pairs", "2",
                 "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "essop.v").exists() and (tmp_path / "essop.json").exists()
    assert "| essop_1x2_bl2_q8_shared_w16_d1_per_pair_fp16 | icarus | 15 | 15/15 | 0 |" in out
    assert out.rstrip().endswith("PASS: RTL equals the golden model bit for bit")


def test_synth_takes_every_config_field_but_its_sweep_axes(capsys):
    """`essop synth` sweeps rows, cols, bl and sharing with options of its own (several values each); every
    other EssopConfig field, the LFSR ones included, comes from the shared options."""
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(EssopConfig):
        assert "--" + field.name.replace("_", "-") in text
        if field.name not in ("rows", "cols", "bl", "sharing"):
            assert f"(default: {field.default!r})" in text
    assert "--config CONFIG.json" in text and "--bl BL [BL ...]" in text


@pytest.mark.parametrize("argv, message", [
    (["--lfsr-seed-x", "0"], "lfsr_seed_x must be in [1, 65535], not 0"),
    (["--q", "9", "--lfsr-width", "8", "--lfsr-seed-x", "3", "--lfsr-seed-d", "5"],
     "q (9) must not exceed lfsr_width (8)"),
    (["--acc-depth", "4"], "acc_depth > 1 (4) requires scaling='block'"),
    (["--bl", "16", "12"], "bl must be a power of two, not 12"),
    (["--readout", "double"], "readout must be one of 'shift', 'shadow', not 'double'"),
    (["--sharing", "shared", "--element-words"], "--element-words builds per_element generators: give --sharing "
                                                 "per_element"),
    (["--sharing", "per_element", "--element-words", "--rng", "sobol"],
     "element_words=True is a way to build LFSR per_element generators, not sharing='per_element' with rng='sobol'"),
])
def test_synth_refuses_a_bad_configuration_before_synthesising(tmp_path, capsys, argv, message):
    assert main(["synth", *argv, "--out", str(tmp_path / "out"), "--build", str(tmp_path / "build")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"essop synth: error: {message}")
    assert not (tmp_path / "build").exists()


def test_sweep_options_lib_and_cache_dir_reach_the_providers(tmp_path):
    seen = []
    sweep.register_column("test_options", lambda point: seen.append(dict(point.options)) or {}, default=False)
    try:
        assert main(["sweep", "--bl", "4", "--rows", "1", "--cols", "1", "--columns", "test_options",
                     "--lib", "asap7", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o"),
                     "--build-dir", str(tmp_path / "b")]) == 0
    finally:
        sweep._PROVIDERS.pop("test_options")
    assert len(seen) == 2
    assert all(o["lib"] == "asap7" and o["cache_dir"] == str(tmp_path / "cache") for o in seen)


def test_sweep_refuses_an_unknown_library_before_any_point(tmp_path, capsys):
    assert main(["sweep", "--bl", "4", "--columns", "synth", "--lib", "nope", "--out", str(tmp_path / "o"),
                 "--build-dir", str(tmp_path / "b")]) == 2
    assert "essop sweep: error: unknown library 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_every_column_provider_is_registered_without_importing_its_room():
    """The four providers are registered by importing the sweep alone; synth's and the accuracy column are
    opt-in."""
    known = sweep.providers()
    assert {"cocotb", "estimator", "synth", "accuracy"} <= set(known)
    assert [n for n, p in known.items() if p.default] == ["cocotb", "estimator"]
    assert known["synth"].func is sweep.synth_column and known["accuracy"].func is sweep.accuracy_column


def test_python_m_essop_app_dispatches():
    """Scripts and the campaign start `python -m essop.app ...`: the same command line, errors in one line."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "essop.app", "generate", "--bl", "12", "-o", "/nonexistent/x.v"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == "essop generate: error: bl must be a power of two, not 12\n"

"""essop.synth.pareto: each configuration's hardware ratios come from its own synth.csv row and baseline, its
accuracy gap from the campaign report (pending rows stay pending), its fidelity from the first table of each
fidelity file (the earlier file first); the picture is written."""
import csv
import json

import pytest

from essop.synth import pareto
from essop.synth.compare import FIELDS

FIDELITY_MD = """# Gradient fidelity

| configuration | median cosine | min cosine | saturated | median output cosine |
|---|---|---|---|---|
| expected per_pair | 0.989 | 0.963 | False | 0.948 |
| essop per_pair shared BL 8 | 0.697 | 0.558 | False | 0.589 |
| essop per_pair shared BL 16 | 0.812 | 0.678 | False | 0.738 |
| essop block shared BL 16 | 0.319 | 0.146 | False | 0.309 |

Another grid, a trained checkpoint: not the default grid.

| configuration | median cosine | min cosine |
|---|---|---|
| essop per_pair shared BL 16 | 0.111 | 0.1 |
"""


def _row(design, bl="", rows=1, sharing="", scaling="", tpa=1.0, energy=1.0, library="nangate15", cell="",
         readout="", clock_gating=False):
    r = {f: "" for f in FIELDS}
    r.update(design=design, library=library, rows=rows, cols=rows, bl=bl, sharing=sharing, scaling=scaling,
             stages=6 if design == "fp16_mul" else "", throughput_per_area=tpa, energy_per_product_fj=energy,
             cell=cell or ("updown" if design == "essop" else ""),
             readout=readout or ("shift" if design == "essop" else ""),
             clock_gating=clock_gating if design == "essop" else "")
    return r


def _csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def sources(tmp_path):
    table = {"fp32": {"rows": 1, "mean_test_acc": 85.0}, "rows": [
        {"row": "fp32-s0", "mode": "fp32", "scaling": None, "sharing": None, "bl": None, "status": "done",
         "gap_pp": 0.0, "epochs_done": 15, "epochs": 15},
        {"row": "essop-per_pair-bl16", "mode": "essop", "scaling": "per_pair", "sharing": "shared", "bl": 16,
         "status": "done", "gap_pp": -1.25, "epochs_done": 15, "epochs": 15},
        # The same (scaling, sharing, BL) with Sobol random numbers: not the LFSR arrays' accuracy.
        {"row": "essop-per_pair-bl16-sobol", "mode": "essop", "scaling": "per_pair", "sharing": "shared",
         "source": "sobol", "bl": 16, "status": "done", "gap_pp": -0.1, "epochs_done": 15, "epochs": 15},
        {"row": "essop-block-bl16", "mode": "essop", "scaling": "block", "sharing": "shared", "bl": 16,
         "status": "running", "gap_pp": -7.0, "epochs_done": 3, "epochs": 15},
        {"row": "expected-per_pair", "mode": "expected", "scaling": "per_pair", "sharing": None, "bl": None,
         "status": "pending", "gap_pp": None, "epochs_done": 0, "epochs": 15}]}
    acc = tmp_path / "table.json"
    acc.write_text(json.dumps(table))
    fid = tmp_path / "fidelity.md"
    fid.write_text(FIDELITY_MD)
    a = _csv(tmp_path / "a.csv", [_row("fp16_mul", tpa=10.0, energy=1800.0),
                                  _row("essop", 16, 8, "shared", "per_pair", tpa=5.0, energy=900.0),
                                  _row("essop", 8, 8, "shared", "per_pair", tpa=10.0, energy=450.0)])
    # A second file with its own baseline and a larger array of one configuration: that array is used, against
    # this file's baseline.
    b = _csv(tmp_path / "b.csv", [_row("fp16_mul", tpa=20.0, energy=1000.0),
                                  _row("essop", 16, 16, "shared", "per_pair", tpa=10.0, energy=250.0),
                                  _row("essop", 16, 8, "shared", "block", tpa=8.0, energy=500.0),
                                  _row("essop", 16, 8, "shared", "per_pair", tpa=16.0, energy=200.0,
                                       cell="upcount"),
                                  # Clock gating: its own point, not the ungated up-counting one's.
                                  _row("essop", 16, 8, "shared", "per_pair", tpa=18.0, energy=100.0,
                                       cell="upcount", clock_gating=True),
                                  # Larger, but a shadow read-out: not the shift array's point.
                                  _row("essop", 16, 32, "shared", "per_pair", tpa=1.0, energy=9000.0,
                                       readout="shadow")])
    return acc, fid, [a, b]


def test_points_join_the_three_sources(sources):
    acc, fid, csvs = sources
    hw, base = pareto.read_hardware(csvs)
    both = pareto.points(pareto.read_accuracy(acc), pareto.read_fidelity(fid), hw)
    up = [p for p in both if p["cell"] == "upcount" and not p["clock_gating"]]
    gated = [p for p in both if p["clock_gating"]]
    assert len(gated) == 1 and (gated[0]["area_eff"], gated[0]["energy_eff"], gated[0]["gap_pp"]) == (0.9, 10.0, -1.25)
    assert "| per_pair shared BL16 upcount gated | 8x8 nangate15 | 0.900x | 10.00x | -1.25 | 0.812 | 0.738 |" in \
        pareto.markdown(gated)
    pts = {(p["scaling"], p["bl"]): p for p in both if p["cell"] == "updown"}
    assert len(pts) == len([p for p in both if p["cell"] == "updown"])
    assert set(pts) == {("per_pair", 16), ("per_pair", 8), ("block", 16)}
    # The up-counting twin: its own efficiency, the configuration's accuracy and fidelity (same counts).
    assert len(up) == 1 and (up[0]["rows"], up[0]["area_eff"], up[0]["energy_eff"]) == (8, 0.8, 5.0)
    assert (up[0]["gap_pp"], up[0]["median_cosine"]) == (-1.25, 0.812)
    p16 = pts["per_pair", 16]
    assert (p16["rows"], p16["area_eff"], p16["energy_eff"]) == (16, 0.5, 4.0)
    assert p16["gap_pp"] == -1.25 and p16["status"] == "done"
    assert p16["median_cosine"] == 0.812               # the default grid, not the later table's 0.111
    assert p16["median_output_cosine"] == 0.738
    # A row still running has no gap yet, whatever its latest epoch says.
    assert pts["block", 16]["gap_pp"] is None and pts["block", 16]["status"] == "running"
    assert pts["block", 16]["median_cosine"] == 0.319
    assert pts["per_pair", 8]["status"] == "not in the campaign"
    assert pts["per_pair", 8]["area_eff"] == 1.0 and pts["per_pair", 8]["energy_eff"] == 4.0
    assert "| per_pair shared BL16 upcount | 8x8 nangate15 | 0.800x | 5.00x | -1.25 | 0.812 | 0.738 |" in pareto.markdown(up)
    text = pareto.markdown(list(pts.values()))
    assert "| per_pair shared BL16 | 16x16 nangate15 | 0.500x | 4.00x | -1.25 | 0.812 | 0.738 |" in text
    assert "| block shared BL16 | 8x8 nangate15 | 0.400x | 2.00x | running | 0.319 | 0.309 |" in text


def test_fidelity_without_its_table_is_refused(tmp_path):
    p = tmp_path / "f.md"
    p.write_text("# nothing here\n")
    with pytest.raises(ValueError, match="no '| configuration | median cosine |' table"):
        pareto.read_fidelity(p)


def test_main_writes_the_picture_and_table(sources, tmp_path):
    acc, fid, csvs = sources
    out = tmp_path / "pareto.png"
    assert pareto.main(["--accuracy", str(acc), "--fidelity", str(fid), "--synth-csv", *map(str, csvs),
                        "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| per_pair shared BL16 |" in out.with_suffix(".md").read_text()


def test_later_fidelity_tables_fill_in_what_the_first_lacks(sources, tmp_path):
    """--fidelity A B: B's table (the campaign's rows) adds configurations A lacks and never overrides A's;
    its rows of other sources (Sobol, the per-pair shift) are not the LFSR arrays' fidelity."""
    acc, fid, csvs = sources
    campaign = tmp_path / "campaign.md"
    campaign.write_text("| configuration | median cosine | min cosine |\n|---|---|---|\n"
                        "| essop per_pair shared BL 16 | 0.5 | 0.4 |\n"
                        "| essop per_pair shared BL 16 sobol | 0.99 | 0.9 |\n"
                        "| essop per_pair shared BL 64 lfsr+shift | 0.98 | 0.9 |\n"
                        "| essop per_pair shared BL 64 | 0.930 | 0.881 |\n")
    c = _csv(tmp_path / "c.csv", [_row("fp16_mul", tpa=10.0, energy=1800.0),
                                  _row("essop", 64, 8, "shared", "per_pair", tpa=1.0, energy=1800.0)])
    assert pareto.main(["--accuracy", str(acc), "--fidelity", str(fid), str(campaign), "--synth-csv",
                        *map(str, csvs), str(c), "--out", str(tmp_path / "p.png")]) == 0
    text = (tmp_path / "p.md").read_text()
    assert "| per_pair shared BL16 | 16x16 nangate15 | 0.500x | 4.00x | -1.25 | 0.812 | 0.738 |" in text
    # A table written before the output column: its weight cosine, no output cosine.
    assert "| per_pair shared BL64 | 8x8 nangate15 | 0.100x | 1.00x | not in the campaign | 0.930 | not measured |" \
        in text


def test_element_words_are_a_configuration_of_their_own(tmp_path):
    """per_element with element words (source lfsr+words): its own hardware row, accuracy row and fidelity row,
    never those of the per_element LFSRs; drawn and labelled as such."""
    acc = tmp_path / "table.json"
    acc.write_text(json.dumps({"fp32": {"rows": 1, "mean_test_acc": 85.0}, "rows": [
        {"row": "pe", "mode": "essop", "scaling": "per_pair", "sharing": "per_element", "source": "lfsr", "bl": 16,
         "status": "done", "gap_pp": -0.58, "epochs_done": 15, "epochs": 15},
        {"row": "pe-words", "mode": "essop", "scaling": "per_pair", "sharing": "per_element",
         "source": "lfsr+words", "bl": 16, "status": "pending", "gap_pp": None, "epochs_done": 0, "epochs": 15}]}))
    fid = tmp_path / "fidelity.md"
    fid.write_text("| configuration | median cosine | median output cosine |\n|---|---|---|\n"
                   "| essop per_pair per_element BL 16 | 0.794 | 0.809 |\n"
                   "| essop per_pair per_element BL 16 lfsr+words | 0.798 | 0.876 |\n")
    a = _csv(tmp_path / "a.csv", [_row("fp16_mul", tpa=10.0, energy=1800.0),
                                  _row("essop", 16, 8, "per_element", "per_pair", tpa=4.4, energy=1750.0)])
    w = _row("essop", 16, 8, "per_element", "per_pair", tpa=5.2, energy=1230.0)
    w["rng"] = "lfsr+words"
    b = _csv(tmp_path / "b.csv", [_row("fp16_mul", tpa=10.0, energy=1800.0), w])
    assert pareto.main(["--accuracy", str(acc), "--fidelity", str(fid), "--synth-csv", str(a), str(b),
                        "--out", str(tmp_path / "p.png")]) == 0
    text = (tmp_path / "p.md").read_text()
    assert "| per_pair per_element BL16 | 8x8 nangate15 | 0.440x | 1.03x | -0.58 | 0.794 | 0.809 |" in text
    assert "| per_pair per_element BL16 lfsr+words | 8x8 nangate15 | 0.520x | 1.46x | pending | 0.798 | 0.876 |" \
        in text


def test_accuracy_of_lfsr_rows_only(sources):
    acc, _, _ = sources
    got = pareto.read_accuracy(acc)[("per_pair", "shared", 16, "lfsr")]
    assert (got["row"], got["gap_pp"]) == ("essop-per_pair-bl16", -1.25)


def test_seeds_of_one_configuration_share_a_point(tmp_path):
    def row(name, status, gap, epochs_done=15, bl=16):
        return {"row": name, "mode": "essop", "scaling": "per_pair", "sharing": "shared", "source": "lfsr",
                "bl": bl, "status": status, "gap_pp": gap, "epochs_done": epochs_done, "epochs": 15}

    path = tmp_path / "table.json"
    # A second seed still pending does not hide the finished one, wherever it stands in the table.
    path.write_text(json.dumps({"fp32": {}, "rows": [row("s0", "done", -1.0), row("s1", "pending", None, 0)]}))
    got = pareto.read_accuracy(path)[("per_pair", "shared", 16, "lfsr")]
    assert (got["gap_pp"], got["status"], got["runs"], got["row"]) == (-1.0, "done", 1, "s0")
    # Two finished seeds: the mean gap.
    path.write_text(json.dumps({"fp32": {}, "rows": [row("s0", "done", -1.0), row("s1", "done", -0.5)]}))
    got = pareto.read_accuracy(path)[("per_pair", "shared", 16, "lfsr")]
    assert (got["gap_pp"], got["runs"], got["row"]) == (-0.75, 2, "s0, s1")
    # None finished: the furthest row's status and progress.
    path.write_text(json.dumps({"fp32": {}, "rows": [row("a", "pending", None, 0, 32),
                                                      row("b", "partial", -3.0, 7, 32)]}))
    got = pareto.read_accuracy(path)[("per_pair", "shared", 32, "lfsr")]
    assert (got["gap_pp"], got["status"], got["epochs_done"], got["row"]) == (None, "partial", 7, "b")


def test_every_random_number_source_has_a_marker_of_its_own():
    """Points of one BL (one colour) stay apart by marker: the shared LFSR arrays by scaling, the other sources
    and the per-element designs each by their own, every one named in the legend."""
    def point(scaling="per_pair", sharing="shared", source="lfsr"):
        return {"scaling": scaling, "sharing": sharing, "source": source}
    configs = [point(), point("block"), point("per_sample"), point(sharing="per_element"),
               point(sharing="per_element", source="lfsr+words"), point(source="lfsr+shift"),
               point(source="sobol"), point(source="sobol+shift")]
    markers = [pareto._marker(p) for p in configs]
    assert len(set(markers)) == len(markers)
    named = {m for _, m in pareto.MARKER_LABELS}
    assert set(markers) <= named

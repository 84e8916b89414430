"""essop.synth.report: every table column reads as a number or a label (n_cells is a count), and the picture
is bars against the baseline for one configuration, a sweep plot for several."""
import csv

import matplotlib
import pytest

from essop.synth import report
from essop.synth.compare import FIELDS, comparison

matplotlib.use("Agg")

#: Columns whose values are labels, not numbers.
LABELS = {"design", "library", "sharing", "scaling", "output_format", "cell", "readout"}


def row(design, bl="", sharing="", rows=1, stages="", scale=1.0):
    r = {f: "" for f in FIELDS}
    r.update(design=design, library="nangate15", rows=rows, cols=rows, bl=bl, sharing=sharing, stages=stages,
             area_um2=500.0 * scale, cells_area_um2=300.0 * scale, periphery_area_um2=200.0 * scale,
             area_per_product_unit_um2=500.0 * scale / rows ** 2, n_cells=1315, n_flops=189, fmax_ghz=6.9,
             cycles_per_pair=bl or 1, cycles_per_pair_acc1=bl or 1, products_per_ns=6.9,
             throughput_per_area=1.2e7 / scale / (bl or 1), energy_per_cycle_pj=1.8,
             energy_per_product_fj=1800.0 * scale, energy_per_product_acc1_fj=1800.0, toggle_rate=0.3,
             energy_per_product_global_fj=2000.0, net_activity_mean=0.27, sequential_power_share=0.5,
             flops_from_vcd=189, flop_check=1.0, clock_floor_share=0.3, energy_per_product_gated_est_fj=1700.0,
             gating_cells=9)
    return r


def test_table_columns_are_numbers_or_labels(tmp_path):
    base = row("fp16_mul", stages=6)
    essop = row("essop", bl=16, sharing="shared", rows=16, scale=0.1)
    text = report.write_tables(tmp_path, [base, essop], [comparison(essop, base)], {"date": "today"})
    header = next(line for line in text.splitlines() if line.startswith("| design | library"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    body = [line for line in text.splitlines() if line.startswith("| fp16_mul") or line.startswith("| essop |")]
    assert len(body) == 2
    for line in body:
        cells = dict(zip(cols, [c.strip() for c in line.strip("|").split("|")]))
        assert cells["n_cells"] == "1315"
        for col, value in cells.items():
            if col not in LABELS and value != "":
                float(value)   # raises if a column is not a number
    with open(tmp_path / "synth.csv") as f:
        assert [r["n_cells"] for r in csv.DictReader(f)] == ["1315", "1315"]


def _axes_of(path):
    return path.exists() and path.stat().st_size > 10_000


def test_one_configuration_draws_bars(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(report, "_bars", lambda axes, essop, base: drawn.update(kind="bars", n=len(essop)))
    rows = [row("fp16_mul", stages=6), row("essop", bl=16, sharing="shared", rows=16),
            row("essop", bl=16, sharing="per_element", rows=16)]
    report.plot(tmp_path, rows)
    assert drawn == {"kind": "bars", "n": 2}


def test_bars_against_the_baseline(tmp_path):
    import matplotlib.pyplot as plt
    rows = [row("fp16_mul", stages=6), row("essop", bl=16, sharing="shared", rows=16, scale=0.08)]
    fig, axes = plt.subplots(1, 3)
    report._bars(axes, rows[1:], rows[0])
    for ax, (col, _, _) in zip(axes, report.METRICS):
        heights = [p.get_height() for p in ax.patches]
        assert heights == [rows[1][col], rows[0][col]]     # ESSOP, then the multiplier
        labels = [t.get_text() for t in ax.texts]
        assert labels[1].endswith("1.00x")                 # the baseline against itself
    plt.close(fig)
    assert _axes_of(report.plot(tmp_path, rows))


def test_several_bls_draw_a_sweep(tmp_path):
    import matplotlib.pyplot as plt
    rows = [row("fp16_mul", stages=6)] + [row("essop", bl=bl, sharing=s, rows=8, scale=0.1)
                                           for s in ("shared", "per_element") for bl in (4, 8, 16)]
    fig, axes = plt.subplots(1, 3)
    report._sweep(axes, rows[1:], rows[0])
    lines = axes[1].get_lines()
    # One line per sharing mode over BL 4, 8, 16, and the baseline.
    assert [list(line.get_xdata()) for line in lines[:2]] == [[4, 8, 16], [4, 8, 16]]
    assert lines[-1].get_label() == "FP16 multiplier, 6 stages"
    assert axes[0].get_xlabel() == "BL"
    plt.close(fig)
    # Only the size varies: the x axis is m*n.
    sizes = [row("essop", bl=16, sharing="shared", rows=n) for n in (4, 8, 16)]
    fig, axes = plt.subplots(1, 3)
    report._sweep(axes, sizes, None)
    assert list(axes[0].get_lines()[0].get_xdata()) == [16, 64, 256] and axes[0].get_xlabel() == "array size m*n"
    plt.close(fig)
    assert _axes_of(report.plot(tmp_path, rows, "sweep.png"))


def test_no_essop_row_no_picture(tmp_path):
    assert report.plot(tmp_path, [row("fp16_mul", stages=6)]) is None

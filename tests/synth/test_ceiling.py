"""essop.synth.ceiling: the zero-periphery limit is f / (BL * A_cell) against the multiplier's f / A, with the
smallest cell the flow produced; the grid is driven by the workload's own bitstreams; a real grid synthesises."""
import json

import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden import fp16
from essop.golden.random_sources import random_numbers
from essop.golden.workload import operands
from essop.synth import ceiling

FP16 = {"design": "fp16_mul", "library": "nangate15", "stages": 6, "area_um2": 560.0, "fmax_ghz": 7.0,
        "energy_per_product_fj": 1800.0}


def point(bl, area, energy, fmax=14.0, cell="updown", lib="nangate15"):
    return {"bl": bl, "cell": cell, "grid": "8x8", "library": lib, "cell_area_um2": area,
            "grid_area_per_cell_um2": area * 1.1, "grid_fmax_ghz": fmax, "energy_per_product_fj": energy}


def test_ratios_are_the_zero_periphery_limit():
    (r,) = ceiling.ceiling_rows([point(16, 20.0, 450.0)], FP16)
    # (m*n / BL) * f / (m*n * A) against f / A_m at the same f: A_m / (BL * A).
    assert r["area_eff_iso_clock"] == pytest.approx(560.0 / (16 * 20.0))
    assert r["area_eff_grid_fmax"] == pytest.approx(560.0 / (16 * 20.0) * 14.0 / 7.0)
    assert r["energy_eff"] == pytest.approx(1800.0 / 450.0)
    assert r["cell_area_from"] == "grid 8x8"
    assert not r["reaches_area_paper_iso_clock"] and not r["reaches_energy_paper_saving"]
    (r4,) = ceiling.ceiling_rows([point(4, 12.0, 70.0)], FP16)
    assert r4["reaches_area_paper_iso_clock"] and r4["reaches_energy_paper_saving"]


def test_the_smallest_cell_of_the_same_bl_kind_and_library_is_used():
    arrays = [{"design": "essop", "library": "nangate15", "rows": "16", "cols": "16", "bl": "16",
               "cells_area_um2": str(256 * 19.0)},
              # Smaller, but another BL, another library, another cell kind, or the multiplier: not used.
              {"design": "essop", "library": "nangate15", "rows": "4", "cols": "4", "bl": "8", "cells_area_um2": "16"},
              {"design": "essop", "library": "asap7", "rows": "4", "cols": "4", "bl": "16", "cells_area_um2": "16"},
              {"design": "essop", "library": "nangate15", "rows": "4", "cols": "4", "bl": "16", "cell": "upcount",
               "cells_area_um2": "16"},
              {"design": "fp16_mul", "library": "nangate15", "rows": "1", "cols": "1", "bl": "",
               "cells_area_um2": "1"}]
    (r,) = ceiling.ceiling_rows([point(16, 20.0, 450.0)], FP16, arrays)
    assert r["cell_area_um2"] == pytest.approx(19.0)
    assert r["cell_area_from"] == "array 16x16"
    (r,) = ceiling.ceiling_rows([point(16, 18.0, 450.0)], FP16, arrays)
    assert r["cell_area_um2"] == 18.0 and r["cell_area_from"] == "grid 8x8"


def test_markdown_has_one_line_per_row():
    rows = ceiling.ceiling_rows([point(4, 12.0, 70.0), point(16, 20.0, 450.0)], FP16)
    text = ceiling.markdown(rows, FP16)
    assert "| 4 | updown | 12.00 (grid 8x8) | 11.667x |" in text
    assert "| 16 | updown | 20.00 (grid 8x8) | 1.750x |" in text


@pytest.mark.parametrize("sharing", ["shared", "per_element"])
def test_grid_stimulus_is_the_workloads_bitstreams(sharing):
    cfg = EssopConfig(rows=3, cols=4, bl=8, sharing=sharing)
    steps = ceiling.grid_stimulus(cfg, pairs=2, seed=5)
    assert len(steps) == 2 * (cfg.bl + cfg.rows)
    xs, ds = operands(np.random.default_rng(5), 2, cfg.rows, cfg.cols)
    rx = random_numbers(cfg, "x", 2 * cfg.bl)
    a, sx, _, _ = fp16.to_magnitudes(xs[1], fp16.vector_exponent(xs[1]), cfg.q)
    stream = steps[cfg.bl + cfg.rows: 2 * cfg.bl + cfg.rows]
    for t, (en, bx, bd, signs_x, signs_d, shift) in enumerate(stream):
        assert (en, shift) == (1, 0)
        for j in range(cfg.cols):
            r = rx[j if sharing == "per_element" else 0, cfg.bl + t]
            assert (bx >> j) & 1 == int(r < a[j])
            assert (signs_x >> j) & 1 == sx[j]
    readout = steps[2 * cfg.bl + cfg.rows:]
    assert all(s[0] == 0 and s[5] == 1 for s in readout)


@pytest.mark.slow
def test_a_real_grid(tmp_path):
    cfg = EssopConfig(rows=2, cols=2, bl=4)
    p = ceiling.cell_point(cfg, "nangate15", tmp_path, pairs=3)
    # The cells are the grid but for the buffers ABC may add for the broadcast inputs (the instance shares are
    # scaled to the flat total: equal up to rounding when there are none).
    assert 0 < p["cell_area_um2"] <= p["grid_area_per_cell_um2"] * (1 + 1e-9)
    assert p["n_flops"] == cfg.rows * cfg.cols * cfg.count_width
    assert p["grid_fmax_ghz"] > 1 and p["energy_per_product_fj"] > 0
    assert 0 < p["clock_floor_share"] < 1
    # The flow's self-check: every flip-flop's D equals its sampled Q a cycle later.
    result = json.loads((tmp_path / f"nangate15_grid_{cfg.name}" / "result.json").read_text())
    assert result["activity"]["flop_check"] == 1.0


@pytest.mark.slow
def test_an_up_counting_grid_is_smaller(tmp_path):
    """The up-counting grid has no sign inputs and one flip-flop fewer a cell; its cells are smaller."""
    cfg = EssopConfig(rows=2, cols=2, bl=8)
    up = ceiling.cell_point(cfg.replace(cell="upcount"), "nangate15", tmp_path, pairs=2)
    down = ceiling.cell_point(cfg, "nangate15", tmp_path, pairs=2)
    assert up["cell"] == "upcount" and down["cell"] == "updown"
    assert up["n_flops"] == cfg.rows * cfg.cols * (cfg.bl_log2 + 1) == down["n_flops"] - cfg.rows * cfg.cols
    assert 0 < up["cell_area_um2"] < down["cell_area_um2"]

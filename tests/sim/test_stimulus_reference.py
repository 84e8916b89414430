"""The testbench's stimulus covers what the brief asks, and its reference packs rows as spec §9 says."""
from __future__ import annotations

import numpy as np
import pytest

from essop.config import EssopConfig
from essop.golden import fp16
from essop.sim.reference import expected_rows, pack, unpack
from essop.sim.stimulus import build_stream


def test_pack_unpack_round_trip_with_negative_counts():
    values = [-5, 0, 7, -1]
    word = pack(values, 6)
    assert word & 0x3F == (-5) & 0x3F                  # element 0 in the lowest bits
    assert unpack(word, 6, 4, signed=True) == values
    assert unpack(pack([0x7E00, 0x8000], 16), 16, 2, signed=False) == [0x7E00, 0x8000]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_block_stream_covers_groups_flags_and_edge_cases(seed):
    """With acc_depth > 1: groups end at `last` and at acc_depth, some block exponents are too small (the
    golden model flags saturation), NaN/Inf poisons rows, and every directed edge case is there."""
    cfg = EssopConfig(rows=3, cols=2, bl=8, acc_depth=4, scaling="block")
    stream = build_stream(cfg, np.random.default_rng(seed), 60)
    lengths, ended_by_last, start = [], [], 0
    for p in range(len(stream)):
        if stream.last[p] or p - start + 1 == cfg.acc_depth:
            lengths.append(p - start + 1)
            ended_by_last.append(bool(stream.last[p]))
            start = p + 1
    assert start == len(stream)
    assert {1, cfg.acc_depth} <= set(lengths) and len(set(lengths)) >= 3
    assert any(k < cfg.acc_depth and by_last for k, by_last in zip(lengths, ended_by_last))
    assert any(k == cfg.acc_depth and not by_last for k, by_last in zip(lengths, ended_by_last))
    rows = expected_rows(cfg, stream)
    assert len(rows) == len(lengths) * cfg.rows
    assert [r.last for r in rows] == [r.row == cfg.rows - 1 for r in rows]
    assert any(r.saturated for r in rows) and not all(r.saturated for r in rows)
    assert any(r.nonfinite for r in rows)
    assert {"all zero", "+0/-0", "largest magnitudes", "subnormals", "NaN/Inf in x", "NaN/Inf in delta",
            "mixed exponents", "tiny delta"} <= set(stream.labels)


def test_realistic_vectors_are_relu_like_and_gaussian_like():
    cfg = EssopConfig(rows=64, cols=64)
    stream = build_stream(cfg, np.random.default_rng(0), 50, directed=False)
    x = stream.xs.view(np.float16).astype(np.float64)
    d = stream.ds.view(np.float16).astype(np.float64)
    assert (x >= 0).all() and 0.3 < (x == 0).mean() < 0.7          # ReLU: non-negative, about half zeros
    assert 0.4 < (d < 0).mean() < 0.6                               # both signs
    assert all(fp16.vector_exponent(v) < 0 for v in stream.ds)     # small errors


def test_per_pair_stream_drives_noise_on_the_ignored_exponent_ports():
    cfg = EssopConfig(rows=2, cols=2)
    stream = build_stream(cfg, np.random.default_rng(0), 40)
    assert len(set(stream.exp_x.tolist())) > 5
    assert len(expected_rows(cfg, stream)) == len(stream) * cfg.rows

"""The workload whose switching activity the power numbers use, and the port activities it produces.

Operands: activations x = ReLU(N(0, 1)) (about half exact zeros, as after a ReLU layer), errors
delta = N(0, 0.01**2), both rounded to FP16; consecutive vector pairs are independent. essop.synth.activity
simulates each design on it to measure switching activity.
"""
from __future__ import annotations

import numpy as np

__all__ = ["operands", "DELTA_SCALE"]

#: Standard deviation of the error values (FP16 weight gradients are small; their exponents are not all equal).
DELTA_SCALE = 0.01


def operands(rng: np.random.Generator, n_pairs: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(x bits uint16 [n_pairs, cols], delta bits uint16 [n_pairs, rows]) of the realistic workload."""
    x = np.maximum(rng.standard_normal((n_pairs, cols)), 0.0).astype(np.float16)
    d = (rng.standard_normal((n_pairs, rows)) * DELTA_SCALE).astype(np.float16)
    return x.view(np.uint16), d.view(np.uint16)

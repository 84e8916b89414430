"""Realistic operands of a weight update, as FP16 bit patterns: the one generator of "realistic" vectors.

Activations x are ReLU outputs (|Gaussian| with about half exact zeros) and errors delta are Gaussian of both
signs at a small scale (backpropagated errors are small), each rounded to FP16 (round to nearest even) and
returned as uint16 bit patterns. Everything is drawn from the caller's `numpy.random.Generator`, in a fixed
order, so a seed reproduces the vectors.

Used by the cocotb stimulus (essop.sim.stimulus: realistic pairs at a random layer scale), the estimator
statistics (essop.golden.statistics: one layer scale per accumulation group) and the synthesis workload whose
switching activity the power numbers use (essop.synth.compare: `operands`, unit-scale x, delta scale
DELTA_SCALE).
"""
from __future__ import annotations

import numpy as np

__all__ = ["relu_activations", "gaussian_errors", "activation_scale", "error_scale", "operands", "DELTA_SCALE"]

#: Layer scales 2**k of the stimulus and statistics: k in [lo, hi) for activations and for errors.
ACTIVATION_SCALE_LOG2 = (-6, 5)
ERROR_SCALE_LOG2 = (-14, -2)
#: Standard deviation of the errors of the synthesis workload (FP16 weight gradients are small; their
#: exponents are not all equal).
DELTA_SCALE = 0.01


def activation_scale(rng: np.random.Generator) -> float:
    """A random layer scale of activations, 2**k with k uniform in ACTIVATION_SCALE_LOG2."""
    return 2.0 ** int(rng.integers(*ACTIVATION_SCALE_LOG2))


def error_scale(rng: np.random.Generator) -> float:
    """A random layer scale of errors, 2**k with k uniform in ERROR_SCALE_LOG2."""
    return 2.0 ** int(rng.integers(*ERROR_SCALE_LOG2))


def relu_activations(rng: np.random.Generator, shape, scale: float | None = None) -> np.ndarray:
    """ReLU-like x of `shape` (an int or a tuple): about half exact zeros, the rest |Gaussian| at `scale`
    (a random activation_scale when not given)."""
    scale = activation_scale(rng) if scale is None else scale
    v = np.maximum(rng.standard_normal(shape), 0.0) * scale
    return np.float16(v).view(np.uint16)


def gaussian_errors(rng: np.random.Generator, shape, scale: float | None = None) -> np.ndarray:
    """Gaussian-like delta of `shape`, both signs, standard deviation `scale` (a random error_scale when not
    given)."""
    scale = error_scale(rng) if scale is None else scale
    return np.float16(rng.standard_normal(shape) * scale).view(np.uint16)


def operands(rng: np.random.Generator, n_pairs: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The synthesis workload: (x bits uint16 [n_pairs, cols], delta bits uint16 [n_pairs, rows]),
    x = ReLU(N(0, 1)), delta = N(0, DELTA_SCALE**2); consecutive vector pairs are independent."""
    return (relu_activations(rng, (n_pairs, cols), scale=1.0),
            gaussian_errors(rng, (n_pairs, rows), scale=DELTA_SCALE))

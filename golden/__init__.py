"""NumPy golden model of ESSOP, written from docs/spec.md alone (never from the RTL's code).

fp16: decode, shared exponent, magnitude shift, count-to-FP16. lfsr: the LFSR registers and m-sequences.
random_sources: every generator's random numbers, cycle by cycle, for each source (LFSR, Sobol) — the one
definition the array model, the training kernels and the statistics read.
array: the whole array, cycle by cycle (EssopArrayModel) and vectorised (counts_reference).
workload: realistic FP16 operands (ReLU activations, Gaussian errors). statistics: the estimator's bias, RMSE
and correlations over many draws (`essop stats`, the sweep's estimator column).
"""

__all__ = ["array", "faults", "fp16", "lfsr", "random_sources", "statistics", "workload"]

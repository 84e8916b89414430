"""Amaranth 0.5 gateware of the ESSOP array: one block a file, EssopArray (array.py) at the top.

`verilog(cfg)` is the entry point for the Verilog generator, the cocotb regression and synthesis.
"""
from __future__ import annotations

from essop.config import EssopConfig

#: Module name of the generated top level, the same for every configuration.
TOP_NAME = "essop_array"

__all__ = ["TOP_NAME", "verilog", "array", "input_stage", "bitstreams", "cell_grid", "sign_readout", "output_stage",
           "lfsr", "random_sources", "cell", "fp16_input", "count_to_fp16", "fp16_mul", "fp16_outer", "ip"]


def verilog(cfg: EssopConfig, name: str = TOP_NAME) -> str:
    """Verilog of EssopArray(cfg), top module `name` (one file per configuration: no HDL parameters)."""
    if not isinstance(cfg, EssopConfig):
        raise TypeError(f"cfg must be an EssopConfig, not {cfg!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {name!r}")
    if not name.isidentifier():
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    from amaranth.back import verilog as back_verilog

    from essop.hdl.array import EssopArray
    return back_verilog.convert(EssopArray(cfg), name=name)

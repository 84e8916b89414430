"""FP16 outer-product array: the fully parallel FP16 VVOP unit that ESSOP replaces.

``Fp16Outer(rows, cols, stages)`` holds ``rows * cols`` :class:`Fp16Multiplier` instances and computes every
product ``delta_i * x_j`` of one vector pair per cycle (a new pair may enter every cycle; results appear
``latency`` cycles later). Port layout follows the ESSOP array (docs/spec.md section 9): ``i_x`` holds x_j in
bits ``[16j + 15 : 16j]``, ``i_delta`` holds delta_i in bits ``[16i + 15 : 16i]``; ``o_data`` holds the product
``delta_i * x_j`` in bits ``[16(i * cols + j) + 15 : 16(i * cols + j)]``.

The cheaper time-multiplexed alternative (one row of ``cols`` multipliers, one delta_i per cycle) has the same
area and energy per product unit and ``rows`` times less throughput; docs/hardware.md compares per product.
"""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from essop.checks import check_int
from essop.fp16_format import WIDTH
from essop.hdl.fp16_mul import Fp16Multiplier, _check_stages

__all__ = ["Fp16Outer"]

_MAX_DIM = 1024


def _check_dim(name, value) -> int:
    check_int(name, value, 1, _MAX_DIM)
    return value


class Fp16Outer(wiring.Component):
    """``rows x cols`` FP16 products ``delta_i * x_j`` per cycle, ``stages`` pipeline registers deep."""

    def __init__(self, rows: int = 4, cols: int = 4, stages: int = 2):
        self._rows = _check_dim("rows", rows)
        self._cols = _check_dim("cols", cols)
        # Same check as the multiplier, so a bad value fails at construction; latency = stages.
        self._latency = _check_stages(stages)
        self._stages = stages
        super().__init__({
            "i_valid": In(1),
            "i_x": In(WIDTH * cols),
            "i_delta": In(WIDTH * rows),
            "o_valid": Out(1),
            "o_data": Out(WIDTH * rows * cols),
        })

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def stages(self) -> int:
        return self._stages

    @property
    def latency(self) -> int:
        """Cycles from a pair's ``i_valid`` to its products' ``o_valid``."""
        return self._latency

    @property
    def products_per_cycle(self) -> int:
        return self._rows * self._cols

    def elaborate(self, platform):
        m = Module()
        valids = []
        for i in range(self._rows):
            for j in range(self._cols):
                mul = Fp16Multiplier(self._stages)
                m.submodules[f"mul_{i}_{j}"] = mul
                k = i * self._cols + j
                m.d.comb += [
                    mul.i_valid.eq(self.i_valid),
                    mul.i_a.eq(self.i_delta.word_select(i, WIDTH)),
                    mul.i_b.eq(self.i_x.word_select(j, WIDTH)),
                    self.o_data.word_select(k, WIDTH).eq(mul.o_p),
                ]
                valids.append(mul.o_valid)
        # Every multiplier's valid pipeline is identical; Yosys merges them into one.
        m.d.comb += self.o_valid.eq(valids[0])
        return m

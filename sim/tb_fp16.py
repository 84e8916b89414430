"""cocotb testbench of the FP16 multiplier and the FP16 outer-product array (generated Verilog).

Launched by tests/sim/test_fp16_mul_cocotb.py through essop.sim.runner.run_testbench (the launcher of every
design's testbench). The DUT's latency and shape come in through the environment (FP16_LATENCY, FP16_ROWS,
FP16_COLS), read from the Amaranth objects' properties by the launcher; widths are read back from the ports.
Operands are driven on falling edges with random idle cycles (i_valid low); results are collected whenever
o_valid is high and scored against NumPy (essop.sim.fp16_vectors). One seed, cocotb.RANDOM_SEED, drives every
random choice.
"""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from essop.fp16_format import WIDTH
from essop.sim import fp16_vectors as vec

_IDLE_PROB = 0.1


def _stimulus(rng: np.random.Generator, exhaustive: list[int]) -> tuple[np.ndarray, np.ndarray]:
    parts = [vec.random_all_classes(rng, int(os.environ.get("FP16_RANDOM", "6000"))),
             vec.rounding_ties(rng, 1000),
             vec.boundaries(rng),
             (np.array([c[1] for c in vec.directed], np.uint16), np.array([c[2] for c in vec.directed], np.uint16))]
    for fixed in exhaustive:
        allb = np.arange(1 << WIDTH, dtype=np.uint32).astype(np.uint16)
        parts.append((np.full(1 << WIDTH, fixed, np.uint16), allb))
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    return a, b


async def _drive(dut, words_in: list[dict[str, int]], latency: int, rng, read) -> list:
    """Drive one dict of port values per accepted beat; return what ``read`` gives for each o_valid beat."""
    got = []
    if latency == 0:
        for w in words_in:
            for port, value in w.items():
                getattr(dut, port).value = value
            dut.i_valid.value = 1
            await Timer(1, unit="ns")
            got.append(read())
        return got
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    dut.i_valid.value = 0
    await FallingEdge(dut.clk)
    pending = list(reversed(words_in))
    idle_cycles = 0
    while pending or len(got) < len(words_in):
        if int(dut.o_valid.value):
            got.append(read())
        if pending and rng.random() >= _IDLE_PROB:
            for port, value in pending.pop().items():
                getattr(dut, port).value = value
            dut.i_valid.value = 1
        else:
            dut.i_valid.value = 0
            idle_cycles += 1
        await FallingEdge(dut.clk)
        if idle_cycles > 10 * len(words_in) + 100:
            raise AssertionError("results stopped coming")
    return got


def _summary(payload: dict) -> None:
    path = os.environ.get("FP16_SUMMARY")
    if path:
        with open(path, "w") as f:
            json.dump(payload, f)


@cocotb.test()
async def fp16_products(dut):
    """Every result equals NumPy's float16 product (NaN results: 0x7E00)."""
    seed = cocotb.RANDOM_SEED
    rng = np.random.default_rng(seed)
    latency = int(os.environ["FP16_LATENCY"])
    exhaustive = [int(v, 0) for v in os.environ.get("FP16_EXHAUSTIVE", "").split(",") if v]
    rows, cols = int(os.environ.get("FP16_ROWS", "0")), int(os.environ.get("FP16_COLS", "0"))
    a, b = _stimulus(rng, exhaustive)
    dut._log.info("seed %d, %d operand pairs, latency %d", seed, len(a), latency)
    if rows == 0:
        beats = [{"i_a": int(x), "i_b": int(y)} for x, y in zip(a, b)]
        out = await _drive(dut, beats, latency, rng, lambda: int(dut.o_p.value))
        got_a, got_b, got = a, b, np.array(out, dtype=np.uint16)
    else:
        # Outer array: each beat is one delta vector (rows) and one x vector (cols); pad to whole beats.
        per = rows * cols
        assert len(dut.o_data) == WIDTH * per and len(dut.i_x) == WIDTH * cols
        n_beats = -(-len(a) // cols)
        pad = n_beats * cols - len(a)
        a_p = np.concatenate([a, np.zeros(pad, np.uint16)])
        b_p = np.concatenate([b, np.zeros(pad, np.uint16)])
        # Row i of beat k gets a[k*cols + i % cols]-style operands: delta_i = a of column (i mod cols),
        # so products (i, j) cover pairs (a[k*cols + j'], b[k*cols + j]) for every i.
        beats, exp_a, exp_b = [], [], []
        for k in range(n_beats):
            xs = b_p[k * cols:(k + 1) * cols]
            ds = np.array([a_p[k * cols + (i % cols)] for i in range(rows)], np.uint16)
            beats.append({"i_x": int.from_bytes(xs.astype("<u2").tobytes(), "little"),
                          "i_delta": int.from_bytes(ds.astype("<u2").tobytes(), "little")})
            exp_a.append(np.repeat(ds, cols))
            exp_b.append(np.tile(xs, rows))

        def read():
            v = int(dut.o_data.value)
            return [(v >> (WIDTH * k)) & ((1 << WIDTH) - 1) for k in range(per)]

        out = await _drive(dut, beats, latency, rng, read)
        got_a, got_b = np.concatenate(exp_a), np.concatenate(exp_b)
        got = np.array(out, dtype=np.uint16).reshape(-1)
    bad = vec.mismatches(got_a, got_b, got)
    _summary({"seed": seed, "compared": int(len(got)), "mismatches": len(bad), "first": bad[:10]})
    for x, y, ref, g in bad[:10]:
        dut._log.error("a=%#06x b=%#06x expected %#06x got %#06x", x, y, ref, g)
    assert len(got) == len(got_a) and not bad, f"{len(bad)} mismatches of {len(got)}"

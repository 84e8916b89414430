"""The generated Verilog of the FP16 multiplier and outer-product array equals NumPy float16 products (cocotb
testbench essop.sim.tb_fp16, launched like the array's by essop.sim.runner.run_testbench)."""
import json
from pathlib import Path

import pytest
from amaranth.back import verilog

from essop.hdl.fp16_mul import Fp16Multiplier
from essop.hdl.fp16_outer import Fp16Outer
from essop.sim.runner import run_testbench

pytestmark = pytest.mark.cocotb

BUILD = Path(__file__).resolve().parents[2] / "build" / "tests" / "fp16"
# A few fixed operands, each against all 65536 patterns of the other: -1.5, smallest subnormal, ~1/3,
# largest finite.
EXHAUSTIVE = "0xBE00,0x0001,0x3555,0x7BFF"

CONFIGS = {
    "mul_s0": (lambda: Fp16Multiplier(0), {}),
    "mul_s1": (lambda: Fp16Multiplier(1), {}),
    "mul_s3": (lambda: Fp16Multiplier(3), {}),
    "mul_s6": (lambda: Fp16Multiplier(6), {}),
    "outer_2x3_s2": (lambda: Fp16Outer(2, 3, 2), {"FP16_RANDOM": "1500"}),
    "outer_1x16_s4_exhaustive": (lambda: Fp16Outer(1, 16, 4), {"FP16_RANDOM": "1600", "FP16_EXHAUSTIVE": EXHAUSTIVE}),
}


def run_config(name: str, simulator: str = "icarus") -> dict:
    make, env = CONFIGS[name]
    dut = make()
    top = "fp16_dut"
    build_dir = BUILD / f"{simulator}_{name}"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{top}.v"
    src.write_text(verilog.convert(dut, name=top))
    summary = build_dir / "summary.json"
    summary.unlink(missing_ok=True)
    extra = {"FP16_LATENCY": str(dut.latency), "FP16_SUMMARY": str(summary), **env}
    if isinstance(dut, Fp16Outer):
        extra |= {"FP16_ROWS": str(dut.rows), "FP16_COLS": str(dut.cols)}
    ok = run_testbench(simulator, [src], top, "essop.sim.tb_fp16", build_dir, extra_env=extra)
    s = json.loads(summary.read_text())
    s["finished"] = ok
    return s


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fp16_icarus(name):
    s = run_config(name)
    assert s["mismatches"] == 0, s["first"]
    assert s["compared"] > 1000
    assert s["finished"]


def test_fp16_verilator():
    s = run_config("mul_s6", "verilator")
    assert s["mismatches"] == 0, s["first"]
    assert s["compared"] > 1000
    assert s["finished"]

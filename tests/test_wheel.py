"""An installed wheel works outside the checkout: built from the repository, installed with its synthesis
extra into a fresh virtual environment in a temporary folder, it generates an array (with its FuseSoC core),
verifies it under Icarus against the golden model, and synthesises a 4x4 array on the cell libraries it
carries as package data — no ../shared, no repository on the path. A command whose extra is missing says
which one to install."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, cwd, env, timeout=900):
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return res


def test_wheel_installed_elsewhere_generates_verifies_and_synthesises(tmp_path):
    dist = tmp_path / "dist"
    res = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT], tmp_path, os.environ)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(dist.glob("essop-*.whl"))
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", venv], tmp_path, os.environ).returncode == 0
    # A clean environment: nothing of the checkout or of the project's own virtual environment on the paths.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ESSOP_PDK", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    res = _run([venv / "bin" / "pip", "install", "-q", f"{wheel}[synth]"], tmp_path, env)
    assert res.returncode == 0, res.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    essop = venv / "bin" / "essop"

    gen = _run([essop, "generate", "--rows", "2", "--cols", "2", "-o", "ip/essop.v"], work, env)
    assert gen.returncode == 0, gen.stderr
    assert {p.name for p in (work / "ip").iterdir()} == {"essop.v", "essop.json", "essop.core", "essop.f"}

    ver = _run([essop, "verify", "--rows", "2", "--cols", "2", "--bl", "4", "--simulators", "icarus", "--pairs", "4"],
               work, env)
    assert ver.returncode == 0, ver.stdout[-2000:] + ver.stderr[-2000:]
    assert "PASS: RTL equals the golden model bit for bit" in ver.stdout

    syn = _run([essop, "synth", "--rows", "4", "--cols", "4", "--sharing", "shared", "--out", "syn", "--build", "b"],
               work, env)
    assert syn.returncode == 0, syn.stdout[-2000:] + syn.stderr[-2000:]
    table = (work / "syn" / "synth.md").read_text()
    assert "essop 4x4 BL16 shared" in table and "nangate15" in table
    # The library came from the installed package, not from a checkout.
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "essop" / "synth" / "pdk" / "nangate15").is_dir()

    train = _run([essop, "train", "--epochs", "1"], work, env)
    assert train.returncode == 2
    assert train.stderr.strip() == ("essop train: error: this command needs torch, which is not installed: "
                                    "pip install 'essop[train]'")

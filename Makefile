# ESSOP — every target sets up the pinned toolchain first (scripts/setup.sh, once; stamp .venv/.installed).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
ESSOP := $(VENV)/bin/essop
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Array configuration for `make verilog` / `make demo` (defaults are EssopConfig's).
ROWS ?= 16
COLS ?= 16
BL   ?= 16
SHARING ?= shared
# Bitstream lengths for `make sweep`.
SWEEP_BL ?= 4 8 16 32 64
JOBS ?= 2
# Design-space grid for `make dse` (every library x size x BL x sharing mode), run as Ray tasks on WORKERS CPUs of
# a local Ray instance, or on a running cluster with RAY_ADDRESS=ray://head:10001.
DSE_LIBS ?= nangate15 nangate45 asap7 sky130hd
DSE_ROWS ?= 4 8 16
DSE_BL   ?= 4 8 16 32
WORKERS  ?= 2
# Accuracy protocol for `make accuracy` / `make accuracy-report`.
PROTOCOL ?= protocols/accuracy-cpu.json

# The API reference: these packages' public names (each module's __all__; a package's __all__ names its
# public submodules), built by pdoc into $(API_DIR).
API_MODULES := essop.config essop.fp16_format essop.checks essop.lfsr_params essop.sobol_params essop.golden essop.hdl essop.sim essop.training \
               essop.synth essop.formal
API_DIR ?= build/api

.PHONY: docs setup demo test test-fast formal verilog verify sweep stats train bench-train fidelity accuracy accuracy-report synth dse ceiling pareto fpga clean

$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(VENV)/.installed

## Main job on the built-in default: generate, simulate on Icarus and Verilator, compare with the golden model.
demo: setup
	$(ESSOP) verify

## The whole test suite (what CI runs).
test: setup
	$(PY) -m pytest -n $(JOBS) tests

## Every formal proof of the RTL (SymbiYosys + Yices), one table row each (docs/reliability.md). The same proofs
## run in `make test` as tests/formal.
formal: setup
	$(PY) -m essop.formal

test-fast: setup
	$(PY) -m pytest -n $(JOBS) -m "not cocotb and not slow and not formal" tests

verilog: setup
	$(ESSOP) generate --rows $(ROWS) --cols $(COLS) --bl $(BL) --sharing $(SHARING) -o build/essop.v

verify: setup
	$(ESSOP) verify --rows $(ROWS) --cols $(COLS) --bl $(BL) --sharing $(SHARING)

## make sweep BL="4 8 16 32 64" (BL given on the command line overrides the single-BL default above)
sweep: setup
	$(ESSOP) sweep --bl $(if $(filter command line,$(origin BL)),$(BL),$(SWEEP_BL)) --jobs $(JOBS)

stats: setup
	$(ESSOP) stats

## Short training protocol (docs/training.md): essop BL 16, 2 epochs on 2,000 images, 1,000 test images.
train: setup
	$(ESSOP) train --quick

bench-train: setup
	$(ESSOP) bench-train

## Per-layer gradient fidelity of the default grid (results/fidelity, quoted in docs/fidelity.md), then of every
## configuration of the accuracy campaign's rows (docs/fidelity/campaign, read by `make pareto`), and the same
## configurations' updates summed over 16 minibatches (docs/fidelity/accumulated).
fidelity: setup
	$(ESSOP) fidelity
	$(ESSOP) fidelity --protocol protocols/accuracy-cpu.json --out docs/fidelity/campaign
	$(ESSOP) fidelity --protocol protocols/accuracy-cpu.json --steps 16 --threads 1 --out docs/fidelity/accumulated

## Every row of PROTOCOL in the background (run folders in runs/accuracy, report in docs/accuracy); stop it
## with the `kill PID` it prints, and `make accuracy` again continues where it stopped.
accuracy: setup
	$(ESSOP) campaign $(PROTOCOL) --background

## Rewrite the table and plots of PROTOCOL from its run folders (or the report's copies).
accuracy-report: setup
	$(ESSOP) campaign $(PROTOCOL) --report-only

synth: setup
	$(ESSOP) synth

## The design-space grid through Ray (docs/hardware.md); stopped and run again, it computes only what is missing.
dse: setup
	$(ESSOP) synth --lib $(DSE_LIBS) --rows $(DSE_ROWS) --bl $(DSE_BL) --sharing shared per_element --fp16-outer 0 \
	  --workers $(WORKERS) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS),) --out results/dse --build build/dse

## The zero-periphery ceiling per BL (docs/hardware.md): a cell grid alone against the FP16 multiplier;
## CEILING_ARGS adds e.g. --array-csv results/synth/synth.csv (smaller in-array cells count) or --cell kinds.
ceiling: setup
	$(PY) -m essop.synth.ceiling --out results/ceiling --build build/ceiling $(CEILING_ARGS)

## Accuracy gap and gradient fidelity against area and energy efficiency (docs/pareto.png): the PARETO_ROWS x
## PARETO_ROWS arrays of the campaign's configurations (cached after the first run), then the picture from the
## campaign report as it stands; run again as rows land.
PARETO_ROWS ?= 8
pareto: setup
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 8 16 32 64 --sharing shared --fp16-outer 0 --out results/pareto/per_pair --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 16 64 --sharing shared --scaling block --fp16-outer 0 --out results/pareto/block --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 16 --sharing per_element --fp16-outer 0 --out results/pareto/per_element --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 16 --sharing per_element --element-words --fp16-outer 0 --out results/pareto/element_words --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 8 16 32 64 --sharing shared --cell upcount --fp16-outer 0 --out results/pareto/upcount --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 8 16 32 64 --sharing shared --cell upcount --clock-gating --fp16-outer 0 --out results/pareto/upcount_cg --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 8 16 --sharing shared --rng sobol --fp16-outer 0 --out results/pareto/sobol --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 16 --sharing shared --rng-shift --fp16-outer 0 --out results/pareto/shift --build build/synth
	$(ESSOP) synth --rows $(PARETO_ROWS) --bl 16 --sharing shared --rng sobol --rng-shift --fp16-outer 0 --out results/pareto/sobol_shift --build build/synth
	$(PY) -m essop.synth.pareto --synth-csv results/pareto/per_pair/synth.csv results/pareto/block/synth.csv \
	  results/pareto/per_element/synth.csv results/pareto/element_words/synth.csv results/pareto/upcount/synth.csv \
	  results/pareto/upcount_cg/synth.csv results/pareto/sobol/synth.csv results/pareto/shift/synth.csv \
	  results/pareto/sobol_shift/synth.csv \
	  --out docs/pareto.png

fpga: setup
	$(ESSOP) fpga $(if $(BOARD),--board $(BOARD),)

## The API reference from the docstrings (build/api/index.html); warnings fail the build.
docs: setup
	PYTHONWARNINGS=error::UserWarning $(PY) -m pdoc -o $(API_DIR) $(API_MODULES)

clean:
	rm -rf build results sim_build .pytest_cache

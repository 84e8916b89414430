#!/usr/bin/env bash
# One-shot check on a lent GPU machine (no internet, nothing installed but torch/numpy/tqdm/pillow):
#   (a) training kernel == golden model on CUDA (stand-alone checker; pytest too when it is installed),
#   (b) a short bench-train on CUDA (fp32 and essop BL 8/16/32/64),
#   (c) ResNet-32 on full CIFAR-10: fp32 and essop BL 16 trained side by side on the one GPU, for as many
#       epochs as fit the time left (each run sizes its epochs from its first epoch: --time-budget-s),
# and copies every log, CSV, JSON and plot into $OUT. The whole script stays within BUDGET_S seconds.
#
# Usage (repository root = working directory; the data zip carried into the ignored folder .data/):
#   OUT=/some/dir bash scripts/gpu_check.sh
# Knobs (environment): BUDGET_S (default 540), DEVICE (cuda), PYTHON (python3), ESSOP_CIFAR10
# (default .data/cifar10-jpeg.zip), BENCH=0 to skip (b), TRAIN_ARGS (extra `essop train` options, e.g.
# "--subset 256 --test-subset 200" for a CPU dry run: DEVICE=cpu BUDGET_S=120 ...), MODES (runs of (c),
# default "fp32 essop_bl16"; names fp32, essop_bl<BL>, expected_bl<BL>).
# Results: $OUT/gpu_check.log, $OUT/cuda_check.txt and $OUT/gpu_check_runs.tar.gz (logs, CSVs, plots).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-540}
OUT=${OUT:-$REPO/results/gpu_check}
TRAIN_ARGS=${TRAIN_ARGS:-}
START=$(date +%s)
mkdir -p "$OUT"
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[gpu_check $(elapsed)s] $*" | tee -a "$OUT/gpu_check.log"; }

source scripts/device_env.sh       # WORK, CACHE, PYTHONPATH, ESSOP_CIFAR10
RUNS="$WORK/runs"
status=0

log "machine: $(nproc) cores; $(date -u)"
(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', 'numpy', numpy.__version__)" 2>&1 | tee -a "$OUT/gpu_check.log"

# (a) kernel == golden on the device
log "(a) kernel == golden on $DEVICE"
if ! "$PY" scripts/cuda_check.py --device "$DEVICE" 2>&1 | tee "$OUT/cuda_check.txt"; then status=1; fi
grep -q MISMATCH "$OUT/cuda_check.txt" && status=1
if "$PY" -c "import pytest" 2>/dev/null; then
  timeout 120 "$PY" -m pytest -q -x -p no:cacheprovider tests/training/test_training_kernel.py > "$OUT/pytest_kernel.txt" 2>&1 || status=1
  tail -3 "$OUT/pytest_kernel.txt" | tee -a "$OUT/gpu_check.log"
else
  log "pytest not installed: the stand-alone checker above is the test"
fi

# Decode CIFAR-10 once so that the runs below only read the cache.
log "decoding $ESSOP_CIFAR10"
if ! "$PY" -c "from essop.training.data import load_cifar10; d = load_cifar10(None, '$CACHE'); print('train', d.x_train.shape, 'test', d.x_test.shape)" 2>&1 | tee -a "$OUT/gpu_check.log"; then
  log "no data: stopping after (a)"; exit 1
fi

# (b) bench-train on the device
if [ "${BENCH:-1}" = 1 ]; then
  log "(b) bench-train on $DEVICE"
  timeout 150 "$PY" -m essop.app bench-train --device "$DEVICE" --steps 3 --warmup 2 --cache-dir "$CACHE" \
    --json "$OUT/bench_train.json" > "$OUT/bench_train.md" 2> "$OUT/bench_train.err" || log "bench-train failed or timed out"
  cat "$OUT/bench_train.md" | tee -a "$OUT/gpu_check.log"
fi

# (c) fp32 and essop BL 16 side by side, each sized to the time left (keep 60 s for start-up, the last
# epoch overrunning its estimate, saving, plotting and copying).
LEFT=$(( BUDGET_S - $(elapsed) - 60 ))
log "(c) training fp32 and essop BL 16 for a budget of ${LEFT}s each, in parallel"
THREADS=$(( $(nproc) / 2 )); [ "$THREADS" -ge 1 ] || THREADS=1
MODES=${MODES:-fp32 essop_bl16}
for name in $MODES; do
  case $name in
    fp32) set -- --mode fp32 ;;
    essop_bl*) set -- --mode essop --bl "${name#essop_bl}" ;;
    expected_bl*) set -- --mode expected --bl "${name#expected_bl}" ;;
    *) log "unknown run name $name"; continue ;;
  esac
  timeout $(( LEFT + 50 )) "$PY" -m essop.app train "$@" --device "$DEVICE" --epochs 160 --time-budget-s "$LEFT" \
    --threads "$THREADS" --cache-dir "$CACHE" --out "$RUNS/$name" --no-progress $TRAIN_ARGS \
    > "$OUT/train_$name.out" 2> "$OUT/train_$name.err" &
done
wait
for name in $MODES; do
  mkdir -p "$WORK/pack/$name"
  cp "$RUNS/$name"/{log.csv,log.json,config.json,summary.json,curves.png} "$WORK/pack/$name/" 2>/dev/null
  mv "$OUT/train_$name".{out,err} "$WORK/pack/$name/" 2>/dev/null
  log "$name: $(tail -1 "$RUNS/$name/log.csv" 2>/dev/null || echo 'no epoch finished')"
  grep -v "^\s*$" "$WORK/pack/$name/train_$name.err" | tail -2 | tee -a "$OUT/gpu_check.log"
done
# One archive: the machine returns only a few files.
for f in bench_train.json bench_train.md bench_train.err nvidia-smi.txt pytest_kernel.txt; do
  [ -f "$OUT/$f" ] && mv "$OUT/$f" "$WORK/pack/"
done
tar -czf "$OUT/gpu_check_runs.tar.gz" -C "$WORK/pack" .
log "done (status $status)"
rm -rf "$WORK"
exit $status

#!/usr/bin/env bash
# The accuracy protocol on one lent GPU: every row of PROTOCOL at once, as parallel `essop train` processes
# on the one device (`essop campaign --device cuda --parallel ROWS`; the training images live on the GPU and
# are augmented there, so the CPU does not limit the steps), stopped cleanly when BUDGET_S runs out (rows
# still running save a checkpoint and show as partial), then the campaign's report and every row's small
# logs packed into one archive to commit.
#
# Usage (repository root = working directory; the data zip carried into the ignored folder .data/):
#   OUT=/some/dir bash scripts/gpu_accuracy.sh
# Knobs (environment): PROTOCOL (default protocols/accuracy-cpu.json: the CPU table's protocol, so the two
# tables compare), BUDGET_S (default 540), PYTHON (python3), ESSOP_CIFAR10 (default .data/cifar10-jpeg.zip),
# ROWS (campaign --rows, default all), PARALLEL (default: every row at once).
# Results: $OUT/gpu_accuracy.log and $OUT/gpu_accuracy.tar.gz (report: table.md/json, plots, per-row logs).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-540}
PROTOCOL=${PROTOCOL:-protocols/accuracy-cpu.json}
OUT=${OUT:-$REPO/results/gpu_accuracy}
START=$(date +%s)
mkdir -p "$OUT"
log() { echo "[gpu_accuracy $(( $(date +%s) - START ))s] $*" | tee -a "$OUT/gpu_accuracy.log"; }

source scripts/device_env.sh       # WORK, CACHE, PYTHONPATH, ESSOP_CIFAR10

log "machine: $(nproc) cores; $(date -u); protocol $PROTOCOL"
(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-')" 2>&1 | tee -a "$OUT/gpu_accuracy.log"
if ! "$PY" -c "from essop.training.data import load_cifar10; d = load_cifar10(None, '$CACHE'); print('train', d.x_train.shape, 'test', d.x_test.shape)" 2>&1 | tee -a "$OUT/gpu_accuracy.log"; then
  log "no data: stopping"; exit 1
fi
ROWS_ARG=(); [ -n "${ROWS:-}" ] && ROWS_ARG=(--rows $ROWS)
PAR_ARG=(); [ -n "${PARALLEL:-}" ] && PAR_ARG=(--parallel "$PARALLEL")
"$PY" -m essop.app campaign "$PROTOCOL" --dry-run --runs-dir "$WORK/runs" "${ROWS_ARG[@]}" | tee -a "$OUT/gpu_accuracy.log"
# SIGTERM at the budget: the campaign forwards it, each row checkpoints mid-epoch, the report is rewritten.
LEFT=$(( BUDGET_S - $(( $(date +%s) - START )) - 45 ))
log "campaign on cuda for ${LEFT}s"
timeout --signal=TERM --kill-after=30 "$LEFT" "$PY" -m essop.app campaign "$PROTOCOL" --device cuda \
  --cache-dir "$CACHE" --runs-dir "$WORK/runs" --report-dir "$WORK/report" "${ROWS_ARG[@]}" "${PAR_ARG[@]}" \
  2>&1 | tee -a "$OUT/gpu_accuracy.log"
"$PY" -m essop.app campaign "$PROTOCOL" --report-only --runs-dir "$WORK/runs" --report-dir "$WORK/report" \
  >> "$OUT/gpu_accuracy.log" 2>&1
mv "$OUT/nvidia-smi.txt" "$WORK/report/" 2>/dev/null
tar -czf "$OUT/gpu_accuracy.tar.gz" -C "$WORK/report" .
log "done: $OUT/gpu_accuracy.tar.gz"
rm -rf "$WORK"

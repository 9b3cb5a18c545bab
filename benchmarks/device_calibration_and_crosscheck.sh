#!/usr/bin/env bash
# Issue 14 on a lent GPU machine, in one command (about 6-7 min): the calibration slice run
# twice (fork server, 3 processes per cell), then the cross-check (pipeline vs plain loop).
# usage: benchmarks/device_calibration_and_crosscheck.sh [CALIBRATION_CONFIG] [CROSSCHECK_CONFIG]
# Put the commit in .devcarry/commit here first (git rev-parse HEAD > .devcarry/commit) and carry
# it, as for benchmarks/device_study.sh. Output: $OUT/calibration.txt, $OUT/crosscheck.txt.
set -u
calibration=${1:-benchmarks/configs/calibration-h100.yaml}
crosscheck=${2:-benchmarks/configs/crosscheck-h100.yaml}
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
timeout -s INT 330 python3 benchmarks/calibration.py --config "$calibration" --dir /tmp/calibration \
    --cores 16 2>&1 | tee "$OUT/calibration.txt"
timeout -s INT 200 python3 benchmarks/crosscheck.py --config "$crosscheck" --rounds 1 --dir /tmp/crosscheck \
    2>&1 | tee "$OUT/crosscheck.txt"
tar -czf "$OUT/calibration-cells.tgz" -C /tmp/calibration first/results/cells second/results/cells 2>/dev/null

#!/usr/bin/env bash
# Issue 14 on a lent GPU machine: the calibration slice run twice with 30 samples a cell from
# 1 process and from 6 processes (about 8 min in all); the cells come back so coverage can be
# recomputed here for any interval method (benchmarks/calibration.py --first/--second).
# usage: benchmarks/device_calibration.sh   (limits: 170 s for the 1-process pair, 410 s for the 6)
set -u
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader > "$OUT/gpu.txt" 2>&1
lscpu > "$OUT/lscpu.txt" 2>&1
for run in 1:170 6:410; do
    p=${run%%:*}
    timeout -s INT "${run##*:}" python3 benchmarks/calibration.py --config benchmarks/configs/calibration-h100-p$p.yaml \
        --dir /tmp/calibration-p$p --cores 16 2>&1 | tee "$OUT/calibration-p$p.txt"
    tar -czf "$OUT/calibration-p$p-cells.tgz" -C /tmp/calibration-p$p first/results/cells second/results/cells 2>/dev/null
done

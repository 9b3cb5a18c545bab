#!/usr/bin/env bash
# Issue 14 on a lent GPU machine, second part: the cross-check with timed regions long enough for
# the GPU's clocks (2 rounds), then the cpu calibration on that machine's 16 cores, 1 and 3
# processes a cell. Each part stops at its time limit: on a freshly started machine (2026-11-24)
# the cross-check finished 3 of its 5 cells in 270 s and the 1-process cpu pair 11 of 16 cells,
# so give each part its own call when the whole is needed. Output: $OUT/crosscheck.txt, $OUT/calibration-cpu16-p*.txt
# and the cpu cells (benchmarks/calibration.py --first/--second reads them).
set -u
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
export PYTHONUNBUFFERED=1
timeout -s INT 270 python3 benchmarks/crosscheck.py --config benchmarks/configs/crosscheck-h100-long.yaml \
    --rounds 2 --dir /tmp/crosscheck 2>&1 | tee "$OUT/crosscheck.txt"
for run in 1:110 3:190; do
    p=${run%%:*}
    timeout -s INT "${run##*:}" python3 benchmarks/calibration.py --config benchmarks/configs/calibration-cpu16-p$p.yaml \
        --dir /tmp/calibration-cpu-p$p --cores 16 2>&1 | tee "$OUT/calibration-cpu16-p$p.txt"
    tar -czf "$OUT/calibration-cpu16-p$p-cells.tgz" -C /tmp/calibration-cpu-p$p first/results/cells second/results/cells 2>/dev/null
done

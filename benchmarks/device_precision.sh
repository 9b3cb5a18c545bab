#!/usr/bin/env bash
# Issue 23 on a lent GPU machine, one stage per call (each under the 10-minute limit):
#   variance  benchmarks/variance_sources.py on the GPU (9 cells, 6 processes, 5 candidates; or
#             [SECONDS [CANDIDATE...]]: stopped after SECONDS, keeping the rounds it finished)
#   run1      benchmarks/configs/precision-h100.yaml from scratch into /tmp/precision/first
#   run2      the same into /tmp/precision/second
# Wheels (snakemake and what it needs on Python 3.12) are carried in .whl/ and installed once
# per machine into /tmp/site. Put the commit in .devcarry/commit first (git rev-parse HEAD).
# Output: $OUT/*.txt, $OUT/variance.jsonl, $OUT/<run>-cells.tgz (cells and process receipts).
set -u
stage=$1
seconds=${2:-540}
shift; shift 2>/dev/null
candidates=${*:-baseline gc warmup pin all}
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
export PYTHONUNBUFFERED=1 SPEEDATLAS_TERMINAL=full
if [ ! -d /tmp/site/snakemake ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader > "$OUT/gpu.txt" 2>&1
cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor >> "$OUT/gpu.txt" 2>&1
case "$stage" in
variance)
    timeout -s INT "$seconds" python3 benchmarks/variance_sources.py --device cuda --processes 6 \
        --candidates $candidates --out "$OUT/variance.jsonl" 2>&1 | tail -40 | tee "$OUT/variance.txt"
    python3 benchmarks/variance_sources.py --summarize "$OUT/variance.jsonl" 2>&1 | tail -40 | tee -a "$OUT/variance.txt"
    ;;
run1 | run2)
    name=$([ "$stage" = run1 ] && echo first || echo second)
    mkdir -p /tmp/precision/$name
    start=$(date +%s)
    timeout -s INT 560 python3 -m snakemake -s Snakefile --directory /tmp/precision/$name --cores 16 \
        results/studies/precision-h100/tables/speedups.parquet --configfile benchmarks/configs/precision-h100.yaml \
        > "$OUT/$stage-snakemake.log" 2>&1
    echo "snakemake exit $? after $(( $(date +%s) - start )) s" | tee "$OUT/$stage.txt"
    tar -czf "$OUT/$stage-cells.tgz" -C /tmp/precision/$name results/cells results/processes 2>/dev/null
    ;;
esac

#!/usr/bin/env bash
# Run (or continue) a study on a lent GPU machine within one command's time limit.
# usage: benchmarks/device_study.sh CONFIG SECONDS [RESUME_TARBALL]
# The copy of the repository on that machine has no .git: put the commit in .devcarry/commit
# here (git rev-parse HEAD > .devcarry/commit) and carry it, so each cell records it.
# Runs snakemake in /tmp/study until done or SECONDS pass (then stops it as Ctrl-C would),
# and leaves $OUT/study.tgz (cells, tables, plots, report, logs) to carry to the next call.
set -u
config=$1; seconds=$2; resume=${3:-}
mkdir -p /tmp/study
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
if [ -n "$resume" ] && [ -f "$resume" ] && [ ! -d /tmp/study/results ]; then
    tar -xzf "$resume" -C /tmp/study
fi
timeout -s INT "$seconds" python3 -m snakemake -s Snakefile --directory /tmp/study \
    --configfile "$config" --cores 16 > "$OUT/snakemake.log" 2>&1
echo "snakemake exit: $?"
tail -3 "$OUT/snakemake.log"
find /tmp/study/results/cells -name cell.parquet | wc -l
tar -czf "$OUT/study.tgz" -C /tmp/study results

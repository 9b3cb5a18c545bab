#!/usr/bin/env bash
# Issue 19 on a lent multi-GPU machine (nvidia-h200-x2 or larger), in one command (< 10 min):
#  1. the slot table (GPUs, NUMA nodes, each slot's cores) and the unit tests on real GPUs;
#  2. benchmarks/interference.py: cells on cuda:0 alone vs with every other GPU busy (2% target);
#  3. the study benchmarks/configs/concurrency-multigpu.yaml under concurrency: device (wall time,
#     which GPU each cell ran on, cells timed beside others), then its GPU cells again under
#     concurrency: machine (one at a time) for the wall-time ratio.
# usage: benchmarks/device_multigpu_concurrency.sh [ROUNDS]   Output: $OUT/*.txt, $OUT/cells-*.tgz
set -u
rounds=${1:-2}
if [ -f .devcarry/commit ]; then export SPEEDATLAS_COMMIT=$(cat .devcarry/commit); fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,uuid,pci.bus_id --format=csv,noheader > "$OUT/gpu.txt" 2>&1
nvidia-smi topo -m >> "$OUT/gpu.txt" 2>&1
python3 -c "import sys; sys.path.insert(0, 'workflow'); from speedatlas.measure.process import gpu_slot as slots; from speedatlas.plan import concurrency
for s in concurrency.plan_slots(): print(s.device, s.name, s.uuid, 'numa', s.numa_node, 'cpus', slots.format_cpulist(s.cpus))" \
    >> "$OUT/gpu.txt" 2>&1
python3 -m pytest -q tests/test_slots.py tests/test_neighbours.py 2>&1 | tail -3 > "$OUT/tests.txt"
timeout -s INT 300 python3 benchmarks/interference.py --rounds "$rounds" --repeats 10 \
    --cells resnet50:train:float32:64 vgg16:infer:float32:64 resnet50:infer:bfloat16:64 mobilenet_v2:infer:float32:4 \
    --csv "$OUT/interference.csv" 2>&1 | tee "$OUT/interference.txt"
for mode in device machine; do
    dir=/tmp/issue19-$mode
    mkdir -p "$dir"
    sed "s/^concurrency: device/concurrency: $mode/" benchmarks/configs/concurrency-multigpu.yaml > "$dir/config.yaml"
    start=$(date +%s)
    timeout -s INT 200 python3 -m snakemake --cores all --directory "$dir" --configfile "$dir/config.yaml" \
        > "$dir/run.log" 2>&1
    echo "$mode: snakemake exit $? in $(( $(date +%s) - start )) s" | tee -a "$OUT/study.txt"
    tar -czf "$OUT/cells-$mode.tgz" -C "$dir" results/cells results/report.md 2>/dev/null
done
python3 - >> "$OUT/study.txt" 2>&1 <<'PY'
import pandas as pd
for mode in ("device", "machine"):
    cells = pd.read_parquet(f"/tmp/issue19-{mode}/results/tables/cells.parquet")
    print(mode, cells.groupby(["device", "gpu_index"], dropna=False).size().to_dict(),
          "timed beside others:", int((cells.neighbours_busy > 0).sum()), "of", len(cells))
PY

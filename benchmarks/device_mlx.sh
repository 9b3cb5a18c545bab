#!/usr/bin/env bash
# PyTorch or MLX on a lent GPU machine (issue 24): torch on cuda vs MLX's CUDA backend.
# usage: benchmarks/device_mlx.sh CONFIG SECONDS [RESUME_TARBALL]     (from the repo root, $OUT set)
# The machine has Python 3.12 with torch (+cu130) and no internet. Carry in .whl/ the wheels of
# snakemake and its dependencies, mlx and mlx-cuda-13 (docs/mlx.md, "On a CUDA machine", says
# how to download them); they are installed into /tmp/site (once per machine) and put on PYTHONPATH,
# so snakemake's interpreter imports mlx and the MLX cells run there (no MLX environment is built).
# MLX's CUDA backend loads the CUDA 13 libraries that torch's wheels ship (site-packages/nvidia/*/lib),
# so they go on LD_LIBRARY_PATH. Like device_study.sh: runs until done or SECONDS pass (then stops
# snakemake as Ctrl-C would), leaves $OUT/study.tgz to resume from in the next call.
#
# mlx-cuda-13's wheel (about 90 MB) is more than one call carries (64 MiB with the repository). Split
# it (split -b 24M X.whl X.whl.part-), put the parts in git-ignored folders, and carry them over
# calls made while the machine stays warm, each call copying its parts out of the checkout:
#   benchmarks/device_mlx.sh stage FOLDER      copies FOLDER/* to /tmp/wheels (outside the checkout)
# A carried folder does not stay in the checkout for the next call (seen 2026-12-06: parts carried
# in one call were gone in the next), /tmp does while the machine is warm.
set -u
if [ "$1" = stage ]; then
    mkdir -p /tmp/wheels && cp "$2"/* /tmp/wheels/ && ls -l /tmp/wheels
    exit $?
fi
config=$1; seconds=$2; resume=${3:-}
# Put the parts back together, then install every wheel (once per machine).
if [ ! -d /tmp/site/mlx ]; then
    mkdir -p /tmp/wheels
    cp .whl/*.whl .whl/*.whl.part-* /tmp/wheels/ 2>/dev/null
    for first in /tmp/wheels/*.whl.part-aa; do
        [ -e "$first" ] && cat "${first%aa}"* > "${first%.part-aa}" && rm "${first%aa}"*
    done
    python3 -m pip install -q --no-index --no-deps --target /tmp/site /tmp/wheels/*.whl
fi
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
nvidia=$(python3 -c "import os, torch; print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia'))")
libs=$(ls -d "$nvidia"/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
python3 -c "import mlx.core as mx, torch; print('mlx', mx.__version__, 'cuda', mx.cuda.is_available(), mx.default_device(), '| torch', torch.__version__)" \
    | tee "$OUT/preflight.txt"
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

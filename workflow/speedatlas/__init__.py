"""speedatlas: honest PyTorch speed-up studies as a Snakemake pipeline.

Modules split along the two sides of the pipeline. The runner side (runner, timing, devices,
models, envinfo, cellio) imports only the standard library, torch, torchvision, numpy and
pyarrow, because it runs inside every torch-version environment. The orchestration side
(config, matrix, stats, tables, plots, report) runs under snakemake's interpreter.
"""

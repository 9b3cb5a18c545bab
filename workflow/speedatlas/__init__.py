"""speedatlas: honest PyTorch speed-up studies as a Snakemake pipeline.

One subpackage per stage, in the order data flows: plan (config -> cells), measure (one cell, in
its own process and torch environment: standard library, torch, torchvision, numpy and pyarrow
only), analyze (cell files -> tables), present (tables -> plots, report, bundle). A lower stage
never imports a higher one; pyproject.toml states these borders for import-linter.
"""

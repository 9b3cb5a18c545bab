# One uv virtual environment per torch version other than "current", built once and reused by
# every cell of that version and every later run. Its rendered spec is the only param, so editing
# envs/torch-<v>.txt (or the template) rebuilds exactly that environment. A build that fails is
# recorded in the marker (status "failed" and uv's message) and the job still succeeds: the
# version's cells become `unavailable` and the report lists them. Retry a failed build with
#   uv run snakemake --cores 1 --forcerun .speedatlas/envs/torch-<v>/env.json
# The job holds the timing resource so no build ever runs beside a measurement.


rule torch_env:
    output:
        marker=torch_envs.marker_path("{torch}"),
    log:
        "results/logs/torch_env/torch-{torch}.log",
    conda:
        "../../envs/speedatlas.yaml"
    resources:
        **get_machine_resources(),
    params:
        spec=get_env_spec,
    shell:
        "python -m speedatlas.plan.torch_envs --version {wildcards.torch:q} --spec {params.spec:q}"
        " --marker {output.marker:q} > {log:q} 2>&1"


# The environment of MLX cells when the interpreter running snakemake cannot import mlx: a uv venv
# layered on the running environment with mlx installed (speedatlas.plan.mlx_env). Same rules as a
# torch version's: built once, a failed build recorded in the marker (its cells `unavailable`),
# retried with --forcerun .speedatlas/envs/mlx-<version>/env.json.
rule mlx_env:
    output:
        marker=mlx_env.marker_path("{mlx_version}"),
    log:
        "results/logs/mlx_env/mlx-{mlx_version}.log",
    conda:
        "../../envs/speedatlas.yaml"
    resources:
        **get_machine_resources(),
    params:
        spec=get_mlx_env_spec,
    shell:
        "python -m speedatlas.plan.mlx_env --spec {params.spec:q} --marker {output.marker:q} > {log:q} 2>&1"

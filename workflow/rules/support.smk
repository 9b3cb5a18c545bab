# The measured dtype support matrix: one probe per device × torch version (all dtypes; a dtype
# that crashes costs only itself), then a table.
# A probe is not a timing job, but it computes on the device, so it holds the timing resource
# (and the runner's OS lock): it never runs while a cell is being timed.


rule dtype_support:
    input:
        unpack(get_cell_env),
    output:
        support=support_jobs.SUPPORT_PATTERN,
    log:
        support_jobs.SUPPORT_PATTERN.replace("results/support/", "results/logs/support/").replace(".parquet", ".log"),
    wildcard_constraints:
        **get_support_wildcard_constraints(),
    conda:
        "../../envs/speedatlas.yaml"
    resources:
        **get_machine_resources(),
    params:
        spec=get_support_spec,
        python=get_support_python,
    shell:
        "python -m speedatlas.measure.dtype_probe --python {params.python:q} --spec {params.spec:q}"
        " --out {output.support:q} > {log:q} 2>&1"


rule dtype_support_table:
    input:
        support=get_support_files(),
    output:
        table=f"{STUDY_DIR}/tables/dtype_support.parquet",
        md=f"{STUDY_DIR}/tables/dtype_support.md",
    log:
        f"{STUDY_DIR}/logs/dtype_support_table.log",
    conda:
        "../../envs/speedatlas.yaml"
    script:
        "../scripts/dtype_support_table.py"

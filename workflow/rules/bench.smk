# One job per cell. The job sees only its own settings (params.spec), so a change to one model
# reruns only its cells. The shell command is fixed text, so editing the runner's Python reruns
# nothing by itself: a change of the measurement bumps matrix.PROTOCOL_VERSION instead.


rule bench:
    input:
        unpack(get_cell_env),
    output:
        cell=cellkey.CELL_PATTERN,
    log:
        cellkey.CELL_PATTERN.replace("results/cells/", "results/logs/cells/").replace(".parquet", ".log"),
    conda:
        "../../envs/speedatlas.yaml"
    threads: get_cell_threads
    resources:
        **get_timing_resources(),
    params:
        spec=get_cell_spec,
        python=get_cell_python,
    shell:
        "python -m speedatlas.measure.supervisor --python {params.python:q} --spec {params.spec:q}"
        " --out {output.cell:q} > {log:q} 2>&1"

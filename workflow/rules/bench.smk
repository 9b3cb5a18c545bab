# One job per fresh process of a cell, then one job that makes the cell's file from them. The
# process jobs run in rounds across the study (process 0 of every cell, then process 1, ...:
# their priority falls with the process's number), so a disturbance of a few seconds hits one
# process of many cells, where the intervals see it, not every process of one cell. A process
# job sees only its own settings (params.spec), so a change to one model reruns only its cells;
# the shell command is fixed text, so a change of the measurement bumps matrix.PROTOCOL_VERSION.
# A study of more than matrix.ROUNDS_MAX_CELLS cells would give Snakemake too many jobs to plan
# (about 1.6 ms each): there one job per cell runs its processes back to back (ROUNDS is False).


if ROUNDS:

    localrules:
        cell_file,

    rule bench:
        input:
            unpack(get_process_inputs),
        output:
            part=cellkey.PROCESS_PATTERN,
            receipt=cellkey.receipt_path(cellkey.PROCESS_PATTERN),
        log:
            cellkey.PROCESS_PATTERN.replace("results/processes/", "results/logs/cells/").replace(".parquet", ".log"),
        wildcard_constraints:
            process=r"\d+",
        priority: get_process_priority
        conda:
            "../../envs/speedatlas.yaml"
        threads: get_cell_threads
        resources:
            **get_timing_resources(),
        params:
            spec=get_process_spec,
            python=get_cell_python,
        shell:
            "python -m speedatlas.measure.supervisor --python {params.python:q} --spec {params.spec:q}"
            " --out {output.part:q} > {log:q} 2>&1"

    # The cell's file: the rows of the processes that ran (the precision rule may have needed fewer
    # than its most), and the rule's plan on every row. Cheap, and never a timing job.
    rule cell_file:
        input:
            parts=get_cell_parts,
        output:
            cell=cellkey.CELL_PATTERN,
        log:
            cellkey.CELL_PATTERN.replace("results/cells/", "results/logs/cells/").replace(".parquet", ".log"),
        priority: 10000
        conda:
            "../../envs/speedatlas.yaml"
        params:
            spec=get_cell_spec,
        shell:
            "python -m speedatlas.measure.cell_merge --spec {params.spec:q} --out {output.cell:q} {input.parts:q}"
            " > {log:q} 2>&1"

else:

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
            "python -m speedatlas.measure.supervisor --cell --python {params.python:q} --spec {params.spec:q}"
            " --out {output.cell:q} > {log:q} 2>&1"

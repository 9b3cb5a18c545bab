# Input functions of the bench stage (workflow/rules/bench.smk): what its rules read.


def cell_of(wildcards):
    return CELLS_BY_PATH[cellkey.CELL_PATTERN.format(**wildcards)]


def with_env(spec, cell):
    """A cell of a torch version other than "current" also carries its environment (marker and
    the hash of its spec), so a new environment reruns exactly that version's cells; so does an
    MLX cell that runs in the pipeline's MLX environment (rule mlx_env)."""
    if uses_mlx_env(cell):
        return mlx_env.spec_with_env(spec, STUDY["mlx"]["version"], MLX_ENV_SPEC)
    if cell.torch == torch_envs.CURRENT:
        return spec
    return torch_envs.spec_with_env(spec, cell.torch, TORCH_ENV_SPECS[cell.torch])


CELL_SPECS = {}


def cell_spec(cell):
    """The cell's own settings, canonical JSON, made once per cell: the params of its cell_file job
    (they trigger reruns of exactly this cell) and what the aggregation checks the file against
    (its spec_sha256, speedatlas.analyze.cellcheck)."""
    spec = CELL_SPECS.get(cell.path)
    if spec is None:
        spec = CELL_SPECS[cell.path] = with_env(cell.spec(), cell)
    return spec


CELL_SPEC_HASHES = {}


def cell_spec_hash(cell):
    """sha256 of the cell's spec, made once per cell: the start-up line and the aggregation both
    compare it with what a cell file records."""
    digest = CELL_SPEC_HASHES.get(cell.path)
    if digest is None:
        digest = CELL_SPEC_HASHES[cell.path] = cellkey.spec_sha256(cell_spec(cell))
    return digest


def get_cell_spec(wildcards):
    return cell_spec(cell_of(wildcards))


def get_process_spec(wildcards):
    """What this process of the cell measures (and, after the pilot, the precision rule)."""
    cell = cell_of(wildcards)
    return with_env(cell.process_spec(int(wildcards.process)), cell)


def get_process_inputs(wildcards):
    """The torch environment (a version other than "current"), and the receipts of the processes
    this one waits for: process 0 (a cell that cannot run stops there), and after the pilot the
    whole pilot (the precision rule reads its spread)."""
    cell, process = cell_of(wildcards), int(wildcards.process)
    inputs = get_cell_env(wildcards)
    part = cellkey.cell_path(cell.key).replace("results/cells/", "results/processes/", 1)
    waits = range(cell.pilot) if process >= cell.pilot else range(min(process, 1))
    for earlier in waits:
        inputs[f"receipt{earlier}"] = cellkey.receipt_path(cellkey.process_part(part, earlier))
    return inputs


def get_process_priority(wildcards):
    """Rounds: every cell's process k before any cell's process k + 1."""
    return 1000 - int(wildcards.process)


def get_cell_parts(wildcards):
    """Every process job of the cell (a process the precision rule did not need leaves an empty
    part and a receipt saying so)."""
    cell = cell_of(wildcards)
    folder = cellkey.cell_path(cell.key).replace("results/cells/", "results/processes/", 1).rpartition("/")[0]
    return [f"{folder}/process-{process}.parquet" for process in range(cell.process_jobs)]


def get_cell_threads(wildcards):
    """CPU threads of the cell (cpu_threads), or all cores given to snakemake for 0.

    Snakemake then runs nothing else beside a timing job on this machine, and on a cluster
    the job step gets that many CPUs (set cpu_threads explicitly there).
    """
    cell = cell_of(wildcards)
    if cell.cpu_threads and not SLOTS:
        return cell.cpu_threads  # workflow.cores raises when no --cores is given (a cluster)
    return concurrency.cell_threads(cell.cpu_threads, workflow.cores, cell.device, SLOTS)


def get_timing_resources():
    """speedatlas_timing=1 (concurrency: machine); per-slot units under concurrency: device."""
    return concurrency.rule_resources(SLOTS, get_device)


def get_device(wildcards):
    return wildcards.device


def get_cell_files():
    return [cell.path for cell in CELLS]


# The cells, those still to measure (a file measured for other settings included) and a floor
# under their time, said up front.
if workflow.is_main_process:
    from speedatlas.plan import stale_cells  # noqa: E402

    print(
        study_size.summary(
            CELLS,
            launcher.wanted(STUDY["launcher"]),
            stale_cells.measured_for_other_settings(
                {c.path: cell_spec_hash(c) for c in CELLS if os.path.exists(c.path)}
            ),
        ),
        file=sys.stderr,
    )

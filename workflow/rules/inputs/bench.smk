# Input functions of the bench stage (workflow/rules/bench.smk): what its rules read.


def cell_of(wildcards):
    return CELLS_BY_PATH[cellkey.CELL_PATTERN.format(**wildcards)]


def get_cell_spec(wildcards):
    """The cell's own settings, canonical JSON: the params trigger reruns exactly this cell."""
    return cell_spec(cell_of(wildcards))


CELL_SPECS = {}


def cell_spec(cell):
    """The spec a cell's job gets, made once per cell (the bench job's params and the hashes the
    aggregate checks its file against both read it).

    A cell of a torch version other than "current" also carries its environment (marker and the
    hash of its spec), so a new spec reruns exactly that version's cells.
    """
    spec = CELL_SPECS.get(cell.path)
    if spec is None:
        spec = cell.spec()
        if cell.torch != torch_envs.CURRENT:
            spec = torch_envs.spec_with_env(spec, cell.torch, TORCH_ENV_SPECS[cell.torch])
        CELL_SPECS[cell.path] = spec
    return spec


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

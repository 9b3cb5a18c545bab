# Input functions of the support stage (workflow/rules/support.smk): what its rules read.


def get_support_outputs():
    return [f"{STUDY_DIR}/tables/dtype_support.parquet"] if SUPPORT_JOBS else []


def get_support_spec(wildcards):
    """The probe's own settings, canonical JSON: the params trigger reruns exactly this probe."""
    spec = SUPPORT_BY_PATH[support_jobs.SUPPORT_PATTERN.format(**wildcards)].spec()
    if wildcards.torch == torch_envs.CURRENT:
        return spec
    # as a cell: the environment travels with the spec (a failed build becomes `unavailable`)
    return torch_envs.spec_with_env(spec, wildcards.torch, TORCH_ENV_SPECS[wildcards.torch])


def get_support_python(wildcards):
    """The probe runs in the torch environment of its torch version, like the cells."""
    return get_cell_python(wildcards)


def get_support_files():
    return [job.path for job in SUPPORT_JOBS]


def get_support_wildcard_constraints():
    """The probes' own constraints (their dtypes and devices need not be the cells')."""
    values = support_jobs.wildcard_values(SUPPORT_JOBS)
    return {key: "|".join(re.escape(v) for v in vals) or "(?!)" for key, vals in values.items()}

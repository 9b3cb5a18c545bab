# Input functions of the envs stage (workflow/rules/envs.smk): what its rules read.


# The rendered spec of every torch version other than "current" (envs/torch-<v>.txt, else the
# template envs/torch-default.txt): the torch_env rule's param, so editing a spec rebuilds it.
TORCH_ENV_SPECS = {
    version: torch_envs.render_spec(version, REPO / "envs")
    for version in sorted({cell.torch for cell in CELLS} - {torch_envs.CURRENT})
}


def get_cell_env(wildcards):
    """The cell's torch environment marker as a named input ({} for "current")."""
    if wildcards.torch == torch_envs.CURRENT:
        return {}
    return {"torch_env": torch_envs.marker_path(wildcards.torch)}


def get_env_spec(wildcards):
    return TORCH_ENV_SPECS[wildcards.torch]


def get_cell_python(wildcards):
    """Interpreter of the cell's torch environment ("current" = the one running snakemake)."""
    return torch_envs.python_path(wildcards.torch)

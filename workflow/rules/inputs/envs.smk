# Input functions of the envs stage (workflow/rules/envs.smk): what its rules read.


# The rendered spec of every torch version other than "current" (envs/torch-<v>.txt, else the
# template envs/torch-default.txt): the torch_env rule's param, so editing a spec rebuilds it.
TORCH_ENV_SPECS = {
    version: torch_envs.render_spec(version, REPO / "envs")
    for version in sorted({cell.torch for cell in CELLS} - {torch_envs.CURRENT})
}


# MLX cells (variants mlx, mlx_compile) run where snakemake's interpreter can import mlx, else
# in the environment built by speedatlas.plan.mlx_env: its rendered spec, or None.
MLX_ENV_SPEC = (
    mlx_env.render_spec(
        STUDY["mlx"]["version"],
        mlx_env.package_for(STUDY["mlx"]["package"], sorted({cell.device for cell in CELLS if cell.mlx})),
    )
    if any(cell.mlx for cell in CELLS) and not mlx_env.importable()
    else None
)


def uses_mlx_env(wildcards):
    """Whether a cell (given by its wildcards or as a matrix.Cell) runs in the pipeline's MLX environment."""
    return MLX_ENV_SPEC is not None and mlx.is_mlx(wildcards.variant)


def get_cell_env(wildcards):
    """The cell's environment marker as a named input ({} for "current" and MLX run by it)."""
    if uses_mlx_env(wildcards):
        return {"mlx_env": mlx_env.marker_path(STUDY["mlx"]["version"])}
    if wildcards.torch == torch_envs.CURRENT:
        return {}
    return {"torch_env": torch_envs.marker_path(wildcards.torch)}


def get_env_spec(wildcards):
    return TORCH_ENV_SPECS[wildcards.torch]


def get_mlx_env_spec(wildcards):
    return MLX_ENV_SPEC


def get_cell_python(wildcards):
    """Interpreter of the cell's environment ("current" = the one running snakemake)."""
    if uses_mlx_env(wildcards):
        return mlx_env.python_path(STUDY["mlx"]["version"])
    return torch_envs.python_path(wildcards.torch)

# Input functions of the MLX stage (workflow/rules/mlx.smk): what its rules read.


def mlx_tables_wanted():
    """Studies with MLX cells, here or in an included result set."""
    from speedatlas.analyze.torch_vs_mlx import has_mlx_cells

    return any(cell.mlx for cell in CELLS) or has_mlx_cells(INCLUDED_FILES)


def get_torch_vs_mlx_cells():
    """MLX cells and torch.compile cells of the study and of included sets (eager partners come
    through speedups.parquet)."""
    from speedatlas.analyze.torch_vs_mlx import wanted_paths

    return wanted_paths([*get_cell_files(), *INCLUDED_FILES])


def get_mlx_outputs():
    if not mlx_tables_wanted():
        return []
    return [f"{STUDY_DIR}/tables/torch_vs_mlx.parquet", f"{STUDY_DIR}/plots/torch_vs_mlx.png"]

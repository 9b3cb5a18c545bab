# Input functions of the plots stage (workflow/rules/plots.smk): what its rules read.


def get_torch_versions_plot(wildcards=None):
    """The torch-version plot for the report, only when the study has more than one version."""
    if len({cell.torch for cell in CELLS}) < 2:
        return {}
    return {"torch_versions_png": f"{STUDY_DIR}/plots/torch_versions.png"}

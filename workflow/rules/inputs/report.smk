# Input functions of the report stage (workflow/rules/report.smk): what its rules read.


def get_report_sections():
    """Extra report sections (Markdown files), in the order they appear after the speed-ups."""
    sections = []
    if PUBLISHED is not None:
        sections.append(f"{STUDY_DIR}/tables/seed_side_by_side.md")
    if "mnist_epoch" in STUDY["workload"]:
        sections.append(f"{STUDY_DIR}/tables/epochs.md")
    if SUPPORT_JOBS:
        sections.append(f"{STUDY_DIR}/tables/dtype_support.md")
    if mlx_tables_wanted():
        sections.append(f"{STUDY_DIR}/tables/torch_vs_mlx.md")
    return sections


def get_shipped_result_set():
    """The shipped H100 result set as this study would include it (JSON; "null" without one):
    the summary suggests it when the study has no device comparison."""
    return json.dumps(comparisons.shipped_result_set(REPO, Path.cwd()), sort_keys=True)

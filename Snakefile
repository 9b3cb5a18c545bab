# speedatlas: how much faster is PyTorch on this accelerator than on that one, honestly timed.
# A table of contents: config, matrix and targets live in workflow/rules/common.smk; each stage has
# its rules in workflow/rules/<stage>.smk and the functions they read in workflow/rules/inputs/<stage>.smk.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs/envs.smk"
include: "workflow/rules/envs.smk"
include: "workflow/rules/inputs/bench.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/inputs/aggregate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/inputs/plots.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/inputs/mlx.smk"
include: "workflow/rules/inputs/report.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/inputs/publish.smk"
include: "workflow/rules/publish.smk"
include: "workflow/rules/inputs/epochs.smk"
include: "workflow/rules/epochs.smk"
include: "workflow/rules/inputs/support.smk"
include: "workflow/rules/support.smk"
include: "workflow/rules/mlx.smk"


rule all:
    default_target: True
    input:
        get_final_output(),

# speedatlas: how much faster is PyTorch on this accelerator than on that one, honestly timed.
# A table of contents: config and targets live in workflow/rules/common.smk, one .smk per stage.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/envs.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/publish.smk"
include: "workflow/rules/epochs.smk"
include: "workflow/rules/support.smk"


rule all:
    input:
        get_final_output(),
    default_target: True

# Input functions of the aggregate stage (workflow/rules/aggregate.smk): what its rules read.


def get_included_cell_files():
    """Cell files of other machines' result sets: inputs, so a change there reruns aggregation."""
    return INCLUDED_FILES


def get_included_manifests():
    return [result_set.manifest for result_set in INCLUDED_SETS if result_set.manifest]

# Input functions of the aggregate stage (workflow/rules/aggregate.smk): what its rules read.


def get_included_cell_files():
    """Cell files of other machines' result sets: inputs, so a change there reruns aggregation."""
    return INCLUDED_FILES


def get_included_manifests():
    return [result_set.manifest for result_set in INCLUDED_SETS if result_set.manifest]


def get_cell_spec_hashes(wildcards):
    """{cell file: sha256 of the spec its job gets}: the aggregation checks each file's recorded
    spec_sha256 against it (speedatlas.analyze.cellcheck)."""
    return {cell.path: cell_spec_hash(cell) for cell in CELLS}

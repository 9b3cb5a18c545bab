"""The timing protocol: the step that is timed, warm-up and synchronised timed blocks, the
compute-dtype check, the host share, the workloads, and the rows of a cell that failed."""

"""What this snakemake call was asked to do, where Snakemake tells only after the Snakefile is
parsed: whether it is a dry run.

Our parse-time checks (unreadable cell files, bundle checksums, the model-list cache) must change
nothing in a dry run, but Snakemake picks its executor ("dryrun") after parsing, so
`workflow.dryrun` is still False while common.smk runs. The command line says it: `-n`,
`--dry-run`, `--dryrun`, or `n` in a cluster of short flags (`-np`). Building Snakemake's own
argument parser to read it would cost 0.6 s of every start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def is_dry_run(argv: Sequence[str] | None = None) -> bool:
    """Whether the command line (default sys.argv) asks for a dry run."""
    for token in list(sys.argv if argv is None else argv)[1:]:
        if token == "--":
            break
        if token in ("--dry-run", "--dryrun"):
            return True
        if token.startswith("-") and not token.startswith("--"):
            flags = token[1:]
            letters = flags[: len(flags) - len(flags.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))]
            if "n" in letters:
                return True
    return False

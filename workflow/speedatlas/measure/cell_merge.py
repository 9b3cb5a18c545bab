"""Make a cell's file from its processes' parts: the cell_file rule's one call.

    python -m speedatlas.measure.cell_merge --spec JSON --out results/cells/.../cell.parquet PART...

Each process of a cell is a job of its own (rounds across the study, issue 23) that leaves its
samples and a receipt (speedatlas.measure.process.receipts). The cell's file holds the rows of
the processes that ran, in process order. A process the precision rule did not need left an
empty part and is left out. If a process that ran did not come out ok, the cell's result is the
first such process's rows (a cell that cannot run stops at process 0; the others would most
likely fail the same way). Every row also gets the cell's sampling plan, recomputed from the
pilot's receipts with the rule the process jobs used: what was asked, what the pilot's spread
wanted, what the budget allowed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from typing import Any

from speedatlas import cellkey
from speedatlas.measure.process import progress, receipts
from speedatlas.measure.protocol import precision


def plan_columns(rule: dict[str, Any], pilot: list[dict[str, Any]]) -> dict[str, Any]:
    """The precision rule's plan as columns (nulls for a fixed number of processes, or for a cell
    whose pilot did not come out ok)."""
    if "precision" not in rule:
        return {}
    columns: dict[str, Any] = {"precision_target": rule["precision"], "pilot_processes": rule["pilot"]}
    if len(pilot) < rule["pilot"] or any(r["status"] != "ok" for r in pilot):
        return columns
    plan = precision.plan([math.log(r["median_step_s"]) for r in pilot], rule["precision"], rule["confidence"],
                          rule["max_processes"], statistics.fmean(r["seconds"] for r in pilot), rule.get("max_seconds"))
    return {**columns, "planned_processes": plan.processes, "wanted_processes": plan.wanted,
            "precision_limited_by": plan.limited_by}


def merge(spec_text: str, parts: list[str], out: str, rounds: bool = True) -> str:
    """Write the cell's file from its parts (`spec_text`: the cell's spec as its job got it, whose
    hash every row records; `rounds`: whether its processes ran in rounds across the study, or
    back to back in one job); return its status."""
    spec = json.loads(spec_text)
    from speedatlas.measure import cellio  # pyarrow: here, not at import (--help stays quick)

    ran = []
    for part in sorted(parts, key=lambda path: int(path.rsplit("process-", 1)[1].split(".")[0])):
        receipt = receipts.read(cellkey.receipt_path(part))
        if receipt["status"] != receipts.SKIPPED:
            ran.append((part, receipt))
    if not ran:
        raise SystemExit(f"speedatlas: no process of {out} ran; its parts: {', '.join(parts)}")
    failed = [(part, receipt) for part, receipt in ran if receipt["status"] != "ok"]
    chosen = failed[:1] or ran
    rule = spec.get("sampling") or {}
    pilot = [receipt for _, receipt in ran[: rule.get("pilot", 0)]]
    extra = {**plan_columns(rule, pilot), "spec_sha256": cellkey.spec_sha256(spec_text), "rounds": rounds}
    with cellio.pandas_hidden():
        rows = [{**row, **extra} for part, _ in chosen for row in cellio.read_part(part).to_pylist()]
        cellio.write_atomic(cellio.rows_to_table(rows), out)
    progress.report_cell(rows, rerun_interval(rows, rule) if rows[0]["status"] == "ok" else None)
    return chosen[0][1]["status"]


def rerun_interval(rows: list[dict[str, Any]], rule: dict[str, Any], confidence: float = 0.95) -> tuple[float, float] | None:
    """The cell's rerun interval of its step time, for the progress line (the tables compute it
    again, in analyze.stats, with the study's confidence): None for a cell of one process."""
    processes = sorted({row.get("process", 0) for row in rows})
    if len(processes) < 2:
        return None
    logs = [math.log(statistics.median(r["step_time_s"] for r in rows if r.get("process", 0) == k)) for k in processes]
    pilot = min(max(rule.get("pilot") or len(logs), 2), len(logs))
    center = statistics.fmean(logs)
    half = precision.half_width(precision.spread(logs[:pilot]), pilot - 1, len(logs), rule.get("confidence", confidence))
    return math.exp(center - half), math.exp(center + half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="canonical JSON of the cell (matrix.Cell.spec)")
    parser.add_argument("--out", required=True, help="the cell's file")
    parser.add_argument("parts", nargs="+", help="the parts of every process job of the cell")
    args = parser.parse_args(argv)
    status = merge(args.spec, args.parts, args.out)
    print(f"speedatlas: {args.out}: {status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

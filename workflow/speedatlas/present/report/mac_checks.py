"""Report section "Machine state and mps checks": what could make these numbers untrustworthy.

- the machine's state while it measured (macOS: battery, Low Power Mode, thermal pressure);
- cells whose time includes operators that fell back from mps to the CPU (cpu_fallback_ops);
- cells whose mps memory went past Metal's recommended working set (paging, not OOM);
- which of the checks ran, so a reader knows what "no warning" is worth.

Orchestration side (pandas). Works on tables made before these columns existed.
"""

from __future__ import annotations

import json

import pandas as pd

from speedatlas.present.formatting import escape_markdown, markdown_table


def _column(cells: pd.DataFrame, name: str) -> pd.Series:
    return cells[name] if name in cells else pd.Series([None] * len(cells), index=cells.index, dtype="object")


def _ops(value) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    try:
        return list(json.loads(value))
    except ValueError:
        return []


def state_warnings(cells: pd.DataFrame) -> list[str]:
    """One line per machine that measured on battery, in Low Power Mode or under thermal pressure."""
    lines = []
    for machine, group in cells.groupby("machine", sort=True):
        found = []
        battery = (_column(group, "power_source") == "Battery Power").sum()
        if battery:
            found.append(f"{battery} cell(s) ran on battery")
        low = (_column(group, "low_power_mode") == True).sum()  # noqa: E712 - nullable column
        if low:
            found.append(f"{low} cell(s) ran in Low Power Mode")
        thermal = _column(group, "thermal_state")
        hot = thermal[thermal.notna() & (thermal != "nominal")]
        if len(hot):
            found.append(f"{len(hot)} cell(s) ran under thermal pressure ({escape_markdown(', '.join(sorted(set(hot))))})")
        if found:
            lines.append(f"**Warning: {escape_markdown(machine)}**: " + "; ".join(found) + ". These times are slower than the "
                         "machine can do: rerun on the power adapter with Low Power Mode off and the machine cool.")
    return lines


def _cell_label(row: pd.Series) -> str:
    return f"{row['model']} {row['device']} {row['dtype']} {row['mode']} batch {row['batch_size']}"


def applies(cells: pd.DataFrame) -> bool:
    """Whether the section has anything to say: an mps cell ran, or a cell ran on macOS (its
    power and thermal state matter for every device there), or a check flagged a cell. A study
    without either (cuda on Linux, or mps cells that were all unavailable) gets no section."""
    if cells.empty:
        return False
    mps_ran = ((cells["device"] == "mps") & (cells["status"] == "ok")).any()
    on_macos = (_column(cells, "cpu_performance_cores").notna() | _column(cells, "power_source").notna()
                | _column(cells, "thermal_state").notna()).any()
    flagged = _column(cells, "cpu_fallback_ops").map(_ops).map(bool).any() or (_column(cells, "mps_over_recommended") == True).any()  # noqa: E712
    return bool(mps_ran or on_macos or flagged)


def section(cells: pd.DataFrame) -> str:
    """The Markdown body of the section (without its heading)."""
    if cells.empty:
        return "_No cell._\n"
    out = []
    out.extend(f"- {line}" for line in state_warnings(cells))

    ops = _column(cells, "cpu_fallback_ops").map(_ops)
    fell_back = cells[ops.map(bool)]
    if len(fell_back):
        table = pd.DataFrame({"machine": fell_back["machine"], "cell": fell_back.apply(_cell_label, axis=1),
                              "operators run on the CPU": ops[ops.map(bool)].map(", ".join)})
        out.append("\nCells whose time includes operators that fell back from mps to the CPU (torch warned "
                   "'... will fall back to run on the CPU'): their mps times are partly CPU times.\n")
        out.append(markdown_table(table))

    over = cells[_column(cells, "mps_over_recommended") == True]  # noqa: E712
    if len(over):
        out.append("\nmps cells whose memory exceeded Metal's recommended working set "
                   "(`torch.mps.recommended_max_memory()`): macOS pages to swap before mps reports out of "
                   "memory, so these times may include paging: "
                   + ", ".join(over.apply(_cell_label, axis=1)) + ".\n")

    ok = cells[cells["status"] == "ok"]
    dtype_checked = _column(ok, "compute_dtype").notna().sum()
    fallback_checked = _column(cells, "cpu_fallback_ops").notna().sum()
    mac = _column(cells, "cpu_performance_cores").notna()
    state = _column(cells, "power_source").notna() | _column(cells, "thermal_state").notna()
    mps = cells[cells["device"] == "mps"]
    out.append("\nChecks that ran:\n")
    out.append(f"- compute dtype (the dtype the model really computed in equals the requested one): "
               f"{dtype_checked} of {len(ok)} ok cell(s)")
    out.append(f"- CPU-fallback warnings captured: {fallback_checked} of {len(cells)} cell(s)")
    out.append(f"- macOS performance/efficiency cores recorded: {int(mac.sum())} cell(s)"
               + ("" if mac.any() else " (no cell ran on macOS)"))
    out.append(f"- macOS power and thermal state recorded: {int(state.sum())} cell(s)")
    out.append(f"- mps cells: {len(mps)} ({(mps['status'] == 'ok').sum()} ok)")
    if not len(mps[mps["status"] == "ok"]):
        out.append("\nNo mps cell ran here: the mps-specific checks (autocast fallback, CPU fallback, "
                   "driver memory) were exercised only by the test suite's fakes, not on a Mac.")
    return "\n".join(out).lstrip("\n") + "\n"

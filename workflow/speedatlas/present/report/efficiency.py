"""Report section: work per step, achieved TFLOP/s, % of the chip's peak, and peak memory."""

from __future__ import annotations

import pandas as pd

from speedatlas.present.formatting import MISSING, markdown_table, number
from speedatlas.present.report import rowkeys

FIGURES = ("GFLOP/step", "TFLOP/s", "% of peak", "peak memory MiB")


def efficiency_markdown(cells: pd.DataFrame) -> str:
    """The section's note and table: one row per ok cell, with the machine, torch version and
    variant where the study has several."""
    ok = cells[cells["status"] == "ok"]
    if ok.empty:
        return "_No cell ran._\n"
    missing = {"flops_per_step", "peak_memory_bytes", "achieved_tflops", "pct_of_peak", "peak_source"} - set(ok)
    ok = ok.assign(**{column: float("nan") for column in missing})  # tables made before these existed
    varying = rowkeys.varying(ok, ("machine", "torch_requested", "variant"))
    view = pd.DataFrame(
        {
            "model": ok["model"],
            **varying,
            "device": ok["device"],
            "dtype": ok["dtype"],
            "mode": ok["mode"],
            "batch": ok["batch_size"],
            "GFLOP/step": (ok["flops_per_step"] / 1e9).map(lambda v: number(v, ".1f")),
            "TFLOP/s": ok["achieved_tflops"].map(lambda v: number(v, ".2f")),
            "% of peak": ok["pct_of_peak"].map(lambda v: number(v, ".1f")),
            "peak memory MiB": (ok["peak_memory_bytes"] / 2**20).map(lambda v: number(v, ".0f")),
        }
    )
    if "mps_driver_allocated_bytes" in ok and ok["mps_driver_allocated_bytes"].notna().any():
        # Never in the same column as CUDA's max allocated: a different quantity (issue 13 item 7).
        view["mps driver MiB (not a peak)"] = (ok["mps_driver_allocated_bytes"] / 2**20).map(lambda v: number(v, ".0f"))
    # a column with no figure at all only pads the table (no peak known for this chip, tables
    # made before FLOPs were counted): said once below instead
    empty = [c for c in FIGURES if (view[c] == MISSING).all()]
    view = view.drop(columns=empty)
    if not set(FIGURES) - set(empty):
        return "_No FLOPs or peak memory were recorded for these cells (tables made before speedatlas counted them)._\n"
    known = ok["peak_source"].dropna().unique()
    note = (
        "FLOPs of one step are counted once per cell on the eager model "
        "(`torch.utils.flop_counter.FlopCounterMode`; a training step counts forward and backward, "
        "not the optimizer). % of peak uses config/devices.yaml"
        + (f" ({', '.join(sorted(known))})" if len(known) else "")
        + "; '—' means the chip's peak is not in the table (add it there or under `device_peaks`). "
        "Peak memory: CUDA max allocated bytes, CPU growth of the process's peak RSS. mps has no "
        "peak counter: its column is the memory the Metal driver held for the process at the end "
        "of the cell (allocator caches included), comparable only with other mps cells.\n"
    )
    if "% of peak" in empty:
        note += ("\nNo chip of this study has a known peak, so there is no % of peak: add it to config/devices.yaml "
                 "or `device_peaks`.\n")
    return note + "\n" + markdown_table(view)

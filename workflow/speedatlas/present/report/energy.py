"""Report section "Energy", from the aggregated tables only (the plot: present/plots/energy.py).

A study where no cell measured energy (a VM without RAPL, a Mac without zeus-apple-silicon) gets
one line saying why and how to turn a source on, not a section of empty tables and a plot that
says "nothing here".
"""

from __future__ import annotations


import pandas as pd

from speedatlas.present.formatting import escape_markdown, format_ratio, interval, markdown_table, number
from speedatlas.present.report import rowkeys

SOURCES = """\
Energy comes from each device's own cumulative counter, read around the timed blocks (never
inside one) and grouped into windows of at least `energy.min_window_s` seconds, because the
counters are coarse; a timed region shorter than one window is extended with untimed steps that
count for energy only. Items per joule is the median over a cell's windows with a {confidence:.0%}
bootstrap interval (no interval with a single window); energy ratio = joules per item of the
baseline / of the candidate (above 1: the candidate uses that many times less energy per item).
What each source covers, and how to turn it on:

- **nvml** (NVIDIA GPUs, Volta and newer): the GPU board's total-energy counter
  (`nvmlDeviceGetTotalEnergyConsumption`). It does **not** include the host CPU, its memory or
  the rest of the server. Needs only the driver; `pip install nvidia-ml-py` makes speedatlas use
  `pynvml`, else it calls the driver's library directly. It updates every 20-100 ms, so a 1 s
  window is within about 10%.
- **rapl** (Linux CPUs): the CPU packages and their DRAM through `/sys/class/powercap`. It covers
  the whole socket (every process on it, not just the cell) and **not** the GPU. Since Linux 5.10
  `energy_uj` is readable by root only: `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj
  /sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj`. VMs and containers usually expose none.
- **ioreport** (Apple Silicon, no sudo): the SoC's energy channels through `pip install
  zeus-apple-silicon`, summed over CPU, GPU, ANE and DRAM (the split is in `energy_note`); Apple's
  figures are model-based estimates, not sensor readings.
- **powermetrics** (Apple Silicon, root only, when zeus-apple-silicon is absent): CPU+GPU+ANE
  combined power sampled every 100 ms.
- **unavailable**: nothing could be read; the reason is in `energy_note` and below. The timings of
  such cells are unaffected.

A comparison between sources (e.g. cpu measured by RAPL against cuda by NVML) compares different
scopes: the GPU figure leaves out the host that feeds it. `idle_power_w` is measured on the same
counter for `energy.idle_s` seconds before the warm-up; "above idle" subtracts it.
"""


TURN_ON = ("NVML on NVIDIA GPUs (needs only the driver), RAPL on Linux CPUs (a readable "
           "`/sys/class/powercap/intel-rapl:*/energy_uj`), IOReport on Apple Silicon (`pip install "
           "zeus-apple-silicon`); turn one on, then measure the cells again (`--forcerun bench`)")


def measured(cells: pd.DataFrame) -> bool:
    """Whether any cell that ran has an energy figure (else: a one-line note, no plot)."""
    if "energy_windows" not in cells or "status" not in cells:
        return False
    return bool(((cells["status"] == "ok") & (cells["energy_windows"].fillna(0) > 0)).any())


def energy_note(cells: pd.DataFrame) -> str:
    """One line for a study where no cell measured energy: why, per device, and how to turn it on."""
    if "energy_source" not in cells:
        return "_Energy: these tables were made before speedatlas measured energy; rerun the aggregate._\n"
    ok = cells[cells["status"] == "ok"]
    if ok.empty:
        return ""
    why = ok.assign(reason=ok["energy_note"].fillna("not recorded").map(lambda v: " ".join(str(v).split())))
    groups = why.groupby(["device", "reason"], sort=True).size()
    reasons = "; ".join(f"{device} ({n} cell{'s' if n > 1 else ''}): {escape_markdown(reason)}"
                        for (device, reason), n in groups.items())
    return f"**Energy** was not measured: {reasons}. Sources speedatlas reads: {TURN_ON}.\n"


def energy_section(cells: pd.DataFrame, speedups: pd.DataFrame, confidence: float = 0.95,
                   plot: str | None = None) -> str:
    """The "## Energy" section: sources, per-cell items per joule, energy ratios, what is missing;
    or, where no cell measured energy, the one line of energy_note."""
    if not measured(cells):
        return energy_note(cells)
    out = ["## Energy\n", SOURCES.format(confidence=confidence)]
    ok = cells[cells["status"] == "ok"]
    counts = ok["energy_source"].fillna("not recorded").value_counts()
    out.append("Cells by energy source: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + ".\n")

    rows = ok[ok["energy_windows"].fillna(0) > 0]
    if not rows.empty:
        view = pd.DataFrame({
            **rowkeys.varying(rows, ("machine", "torch_requested")),
            "model": rows["model"], **rowkeys.varying(rows, ("variant",)), "device": rows["device"], "dtype": rows["dtype"],
            "mode": rows["mode"], "batch": rows["batch_size"], "source": rows["energy_source"],
            "items/s": rows["items_per_s"].map(lambda v: number(v, ".1f")),
            "items/J": [interval(v, lo, hi) for v, lo, hi in
                        zip(rows["items_per_j"], rows["items_per_j_low"], rows["items_per_j_high"])],
            "J/item": rows["energy_j_per_item"].map(lambda v: number(v, ".4g")),
            "power W": rows["avg_power_w"].map(lambda v: number(v, ".0f")),
            "idle W": rows["idle_power_w"].map(lambda v: number(v, ".0f")),
            "items/J above idle": rows["items_per_j_above_idle"].map(lambda v: number(v, ".2f")),
            "windows": rows["energy_windows"].astype(int),
            "flag": rows["energy_window_short"].map(lambda v: "window too short" if v is True else ""),
        })
        out.append("### Items per joule\n")
        out.append(markdown_table(view, markup=["items/J"]))
    if "energy_ratio" in speedups and speedups["energy_ratio"].notna().any():
        rows = speedups[speedups["energy_ratio"].notna()]
        view = pd.DataFrame({
            "axis": rows["axis"], "baseline → candidate": rows["baseline"] + " → " + rows["candidate"],
            **rowkeys.varying(rows, ("machine", "torch_requested")),
            "model": rows["model"], **rowkeys.varying(rows, ("variant",)), "dtype": rows["dtype"], "mode": rows["mode"],
            "batch": rows["batch_size"],
            "speed-up": [format_ratio(v, lo, hi) for v, lo, hi in zip(rows["speedup"], rows["ci_low"], rows["ci_high"])],
            "energy ratio": [format_ratio(v, lo, hi) if pd.notna(lo) and pd.notna(hi) else f"{v:.2f}×" for v, lo, hi in
                             zip(rows["energy_ratio"], rows["energy_ratio_low"], rows["energy_ratio_high"])],
            "sources": rows["energy_sources"],
        })
        out.append("### Energy ratio beside each speed-up\n")
        out.append("Both sides of every row were measured; comparisons where a side has no energy are left out.\n")
        out.append(markdown_table(view, markup=["speed-up", "energy ratio"]))
    if plot:
        out.append(f"Throughput against power per device: [plot]({plot}) (also under Plots).\n")
    missing = ok[ok["energy_source"].isna() | (ok["energy_source"] == "unavailable")]
    if not missing.empty:
        reasons = missing.assign(reason=missing["energy_note"].fillna("not recorded (cell files older than "
                                                                      "energy measurement)"))
        table = (reasons.groupby(["device", "reason"]).size().reset_index(name="cells")
                 .rename(columns={"reason": "why no energy"}))
        out.append("### Cells without energy\n")
        out.append("Turn a source on as described above, then measure these cells again: an energy source "
                   "is not part of a cell's settings, so nothing reruns by itself. `snakemake --forcerun "
                   "bench` measures every cell of the study again; for some cells only, delete each one's "
                   "process files (`results/processes/…/`, the folder of its key) and its "
                   "`results/cells/…/cell.parquet` (a cell file alone is only merged again from its "
                   "process files).\n")
        out.append(markdown_table(table))
    return "\n".join(out)

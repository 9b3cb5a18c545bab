"""The noise plot: each cell's coefficient of variation against the noise threshold."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from speedatlas.present.plots import labels
from speedatlas.present.plots.style import MODE_ORDER, MODE_TITLES, PALETTE, apply_style, placeholder, save

NICE_PERCENTS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]


def ticks(low: float, high: float) -> list[float]:
    """Percent ticks that do not crowd a narrow log axis: 1-2-5 over up to two decades, else
    decades only."""
    inside = [t for t in NICE_PERCENTS if low <= t <= high]
    decades = [t for t in inside if f"{t:g}".strip("0.") in ("1", "")]
    return inside if high / low <= 100 else decades


# Keys besides the model that make a row of their own when they vary (a label names the batch).
ROW_KEYS = ("workload", "torch_requested", "dtype", "variant")
PANEL_WIDTH = 3.4  # inches: two panels and the labels fit a page 1100 px wide without shrinking


def noise_plot(cells: pd.DataFrame, noise_cv: float, png: str, svg: str | None = None) -> None:
    """Coefficient of variation of every cell's timed repeats, against the noise threshold.

    One panel per mode; one row per model (and dtype, variant, torch, workload where the study
    has several), one colour per machine/device; cells above the threshold are labelled with
    their batch size, placed so no two labels overlap (rerun those on a quiet machine).
    """
    ok = cells[(cells["status"] == "ok") & cells["cv"].notna()].copy()
    if ok.empty:
        placeholder(png, svg, "No cell ran successfully: no noise to show.")
        return
    apply_style()
    several_machines = ok["machine"].nunique() > 1
    ok["series"] = (ok["machine"] + "/" + ok["device"]) if several_machines else ok["device"]
    ok["cv_pct"] = (ok["cv"].astype(float) * 100).clip(lower=0.01)
    row_keys = [k for k in ROW_KEYS if k in ok and ok[k].nunique() > 1]
    ok["row"] = [" · ".join(str(v) for v in values) for values in zip(ok["model"], *(ok[k] for k in row_keys))]
    series = sorted(ok["series"].unique())
    colours = dict(zip(series, sns.color_palette(PALETTE, len(series))))
    modes = [m for m in MODE_ORDER if m in set(ok["mode"])] + sorted(set(ok["mode"]) - set(MODE_ORDER))
    rows = sorted(ok["row"].unique())
    label_keys = labels.label_keys(ok, shown={"machine", "device", "model", "mode", *ROW_KEYS})
    threshold = noise_cv * 100
    limits = (min(ok["cv_pct"].min() / 1.6, threshold / 4), max(ok["cv_pct"].max() * 3, threshold * 4))
    fig, grid = plt.subplots(1, len(modes), figsize=(PANEL_WIDTH * len(modes) + 1.4, 0.42 * len(rows) + 1.9),
                             squeeze=False, sharey=True, sharex=True)
    spread = 0.5 / max(1, len(series))
    noisy_points = {}  # per panel: the labelled points, their texts and every marker
    for ax, mode in zip(grid[0], modes):
        xs, ys, texts, markers = noisy_points.setdefault(ax, ([], [], [], []))
        data = ok[ok["mode"] == mode]
        for k, name in enumerate(series):
            part = data[data["series"] == name]
            if part.empty:
                continue
            y = np.array([rows.index(r) for r in part["row"]], dtype=float) + (k - (len(series) - 1) / 2) * spread
            ax.scatter(part["cv_pct"], y, color=colours[name], s=30, label=name, edgecolor="white", linewidth=0.5)
            above = (part["cv_pct"] > threshold).to_numpy()
            xs.extend(part["cv_pct"].to_numpy()[above])
            ys.extend(y[above])
            texts.extend(labels.cell_label(r, label_keys) for _, r in part[above].iterrows())
            markers.extend(zip(part["cv_pct"], y))
        ax.axvline(threshold, color="#444444", linestyle="--", linewidth=1)
        ax.text(threshold, 1.0, f" threshold {threshold:g}%", transform=ax.get_xaxis_transform(), fontsize=8,
                va="bottom", ha="left", color="#444444")
        ax.set_xscale("log")
        ax.set_xlim(*limits)
        ax.xaxis.set_major_locator(mticker.FixedLocator(ticks(*limits)))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_yticks(range(len(rows)), rows)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_title(MODE_TITLES.get(mode, mode), pad=14)
    grid[0][0].set_ylabel("model" + (" · " + " · ".join(labels.SHORT_NAMES.get(k, k) for k in row_keys) if row_keys else ""))
    fig.supxlabel("coefficient of variation of the timed repeats (%, log scale)", fontsize=11)
    noisy = int((ok["cv_pct"] > threshold).sum())
    handles, names = grid[0][0].get_legend_handles_labels()
    for ax in grid[0][1:]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in names:
                handles.append(h)
                names.append(label)
    advice = {0: "", 1: ";\nrerun it on a quiet machine"}.get(noisy, ";\nrerun them on a quiet machine")
    fig.suptitle(f"Run-to-run noise per cell: {noisy} of {len(ok)} cells above the {threshold:g}% threshold"
                 f"{advice}" + (" (labels: their batch size)" if noisy else ""), fontsize=10)
    fig.tight_layout()
    fig.legend(handles, names, title="machine/device" if several_machines else "device", loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(len(names), 4), frameon=False)
    for ax, (xs, ys, texts, markers) in noisy_points.items():
        if texts:
            labels.place(ax, xs, ys, texts, fontsize=7.5, avoid=markers)
    save(fig, png, svg)

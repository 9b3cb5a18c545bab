"""The noise plot: each cell's coefficient of variation against the noise threshold."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from speedatlas.present.plots.style import MODE_ORDER, MODE_TITLES, PALETTE, apply_style, placeholder, save

NICE_PERCENTS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]


def noise_plot(cells: pd.DataFrame, noise_cv: float, png: str, svg: str | None = None) -> None:
    """Coefficient of variation of every cell's timed repeats, against the noise threshold.

    One panel per mode; rows are models, one colour per machine/device; cells above the
    threshold are labelled with their batch size (rerun those on a quiet machine).
    """
    ok = cells[(cells["status"] == "ok") & cells["cv"].notna()].copy()
    if ok.empty:
        placeholder(png, svg, "No cell ran successfully: no noise to show.")
        return
    apply_style()
    several_machines = ok["machine"].nunique() > 1
    ok["series"] = (ok["machine"] + "/" + ok["device"]) if several_machines else ok["device"]
    ok["cv_pct"] = (ok["cv"].astype(float) * 100).clip(lower=0.01)
    series = sorted(ok["series"].unique())
    colours = dict(zip(series, sns.color_palette(PALETTE, len(series))))
    modes = [m for m in MODE_ORDER if m in set(ok["mode"])] + sorted(set(ok["mode"]) - set(MODE_ORDER))
    models = sorted(ok["model"].unique())
    threshold = noise_cv * 100
    limits = (min(ok["cv_pct"].min() / 1.6, threshold / 4), max(ok["cv_pct"].max() * 1.6, threshold * 2.5))
    fig, grid = plt.subplots(1, len(modes), figsize=(5.2 * len(modes) + 1.8, max(2.8, 0.45 * len(models) + 1.8)),
                             squeeze=False, sharey=True, sharex=True)
    spread = 0.5 / max(1, len(series))
    for ax, mode in zip(grid[0], modes):
        data = ok[ok["mode"] == mode]
        for k, name in enumerate(series):
            part = data[data["series"] == name]
            if part.empty:
                continue
            y = np.array([models.index(m) for m in part["model"]], dtype=float) + (k - (len(series) - 1) / 2) * spread
            ax.scatter(part["cv_pct"], y, color=colours[name], s=36, label=name, edgecolor="white", linewidth=0.5)
            for x, yy, batch in zip(part["cv_pct"], y, part["batch_size"]):
                if x > threshold:
                    ax.annotate(f"bs {batch}", (x, yy), xytext=(4, 0), textcoords="offset points", fontsize=8,
                                va="center")
        ax.axvline(threshold, color="#444444", linestyle="--", linewidth=1)
        ax.text(threshold, 1.0, f" threshold {threshold:g}%", transform=ax.get_xaxis_transform(), fontsize=8,
                va="bottom", ha="left", color="#444444")
        ax.set_xscale("log")
        ax.set_xlim(*limits)
        ax.xaxis.set_major_locator(mticker.FixedLocator(NICE_PERCENTS))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_yticks(range(len(models)), models)
        ax.set_ylim(len(models) - 0.5, -0.5)
        ax.set_xlabel("coefficient of variation of the timed repeats (%, log scale)")
        ax.set_title(MODE_TITLES.get(mode, mode), pad=14)
    grid[0][0].set_ylabel("model")
    noisy = int((ok["cv_pct"] > threshold).sum())
    handles, labels = grid[0][0].get_legend_handles_labels()
    for ax in grid[0][1:]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, title="machine/device" if several_machines else "device", loc="center left",
               bbox_to_anchor=(1.0, 0.5), frameon=False)
    advice = {0: "", 1: " (rerun it on a quiet machine)"}.get(noisy, " (rerun them on a quiet machine)")
    fig.suptitle(f"Run-to-run noise per cell: {noisy} of {len(ok)} cells above the {threshold:g}% threshold{advice}",
                 fontsize=11)
    fig.tight_layout()
    save(fig, png, svg)

"""Throughput against power per device, from the aggregated cells table only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from speedatlas.present.plots import labels
from speedatlas.present.plots.style import MODE_TITLES, PALETTE, apply_style, placeholder, plain_log_ticks, save

MARKERS = {"train": "o", "infer": "s"}
COLUMNS = 3
PANEL = (2.7, 2.4)  # inches: three panels in a row fit a page 1100 px wide


def energy_plot(cells: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """Throughput (items/s) against average power (W): one panel per model, one colour per
    machine/device, one marker per mode; each point is labelled with its batch size (and dtype,
    variant, torch where those vary), placed so no two labels overlap. The dashed line of each
    colour is that device's idle power."""
    if "avg_power_w" not in cells:
        placeholder(png, svg, "No energy columns in these tables.")
        return
    ok = cells[(cells["status"] == "ok") & cells["avg_power_w"].notna() & cells["items_per_s"].notna()].copy()
    if ok.empty:  # the report embeds no plot then (sections.shown_plots); the rule's output must exist
        placeholder(png, svg, "No cell measured energy.")
        return
    apply_style()
    several = cells["machine"].nunique() > 1  # name the machine when the study has several
    ok["series"] = (ok["machine"] + "/" + ok["device"]) if several else ok["device"]
    series = sorted(ok["series"].unique())
    colours = dict(zip(series, sns.color_palette(PALETTE, len(series))))
    models = sorted(ok["model"].unique())
    keys = labels.label_keys(ok, shown={"machine", "device", "model", "mode"})
    columns = min(COLUMNS, len(models))
    rows = -(-len(models) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(PANEL[0] * columns + 0.6, PANEL[1] * rows + 1.2), squeeze=False)
    kinds = set(ok["input_kind"].fillna("image")) if "input_kind" in ok else {"image"}
    unit = {"image": "images", "tokens": "sequences"}[next(iter(kinds))] if len(kinds) == 1 else "images or sequences"
    panels = []
    for ax, model in zip(grid.flat, models):
        part = ok[ok["model"] == model]
        for (name, mode), group in part.groupby(["series", "mode"], sort=True):
            ax.scatter(group["avg_power_w"].astype(float), group["items_per_s"].astype(float), color=colours[name],
                       marker=MARKERS.get(mode, "^"), s=34, edgecolor="white", linewidth=0.5)
        for name, group in part.groupby("series"):
            idle = group["idle_power_w"].dropna()
            if not idle.empty:
                ax.axvline(float(idle.median()), color=colours[name], linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        ax.margins(0.25)
        ax.set_title(model, fontsize=10)
        ax.tick_params(labelsize=8)
        panels.append((ax, part))
    for ax in list(grid.flat)[len(models):]:
        ax.set_axis_off()
    fig.supxlabel("average power during the timed region (W, log scale; dashed: idle power)", fontsize=9)
    fig.supylabel(f"throughput ({unit}/s, log scale)", fontsize=9)
    fig.suptitle(f"Throughput vs power, one panel per model (up-left is more {unit} per joule);\n"
                 f"labels: {', '.join(labels.SHORT_NAMES.get(k, k) for k in keys)}", fontsize=10)
    fig.tight_layout()
    handles = [Line2D([], [], color=colours[n], marker="o", linestyle="none", label=n) for n in series]
    handles += [Line2D([], [], color="#444444", marker=MARKERS.get(m, "^"), linestyle="none",
                       label=MODE_TITLES.get(m, m)) for m in sorted(set(ok["mode"]), key=lambda m: m != "train")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 5),
               frameon=False, fontsize=8)
    for ax, part in panels:
        xs, ys = part["avg_power_w"].astype(float).tolist(), part["items_per_s"].astype(float).tolist()
        labels.place(ax, xs, ys, [labels.cell_label(r, keys) for _, r in part.iterrows()], fontsize=6.5)
    save(fig, png, svg)

"""The throughput plot: items/s against batch size, per model and device."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from speedatlas.present.plots.style import (  # noqa: E402
    MODE_TITLES,
    PALETTE,
    apply_style,
    placeholder,
    plain_log_ticks,
    save,
)

LINE_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]
PANEL_KEYS = ("mode", "dtype", "variant", "torch_requested", "workload")
PANEL_NAMES = {"torch_requested": "torch", "mode": ""}
# Token models' items are sequences; a panel holds one kind of input, so its unit is one.
UNITS = {"image": "images", "tokens": "sequences"}
KIND_TITLES = {"image": "image models", "tokens": "token models"}
# Two panels side by side at most, legends below them: the figure stays about 8 inches wide, so
# a page 1100 px wide shows it almost at full size (three panels and a legend on the right made
# 3058 px, shrunk to unreadable in index.html).
COLUMNS = 2
PANEL = (3.9, 3.1)


def _panel_title(row: pd.Series, keys: list[str]) -> str:
    parts = []
    for key in keys:
        if key == "input_kind":
            parts.append(KIND_TITLES[row[key]])
            continue
        value = MODE_TITLES.get(row[key], row[key]) if key == "mode" else row[key]
        parts.append(f"{PANEL_NAMES.get(key, key)} {value}".strip())
    return " · ".join(parts)


def throughput_vs_batch(cells: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """Images/s against batch size: one panel per mode (and dtype, variant, torch where several).

    Token models are plotted in sequences/s, in panels of their own when a study has both kinds.

    Colour = model, line style and marker = machine/device, so "which device" and "which model"
    read independently; the band is the interquartile range of the step times, as images/s.
    Both axes are logarithmic (batch sizes are usually powers of two; throughputs of different
    models differ by orders of magnitude).
    """
    ok = cells[cells["status"] == "ok"].copy()
    if ok.empty:
        placeholder(png, svg, "No cell ran successfully: no throughput to show.")
        return
    apply_style()
    ok["series"] = (ok["machine"] + "/" + ok["device"]) if ok["machine"].nunique() > 1 else ok["device"]
    ok["low"] = ok["batch_size"] / ok["q3_s"]
    ok["high"] = ok["batch_size"] / ok["q1_s"]
    ok["input_kind"] = ok["input_kind"].fillna("image") if "input_kind" in ok else "image"
    keys = ["mode"] + [k for k in (*PANEL_KEYS[1:], "input_kind") if ok[k].nunique() > 1]
    ok["panel"] = ok.apply(_panel_title, axis=1, keys=keys)
    order = {"train": 0, "infer": 1}
    panels = ok.assign(_o=ok["mode"].map(order).fillna(2)).sort_values(["_o", "panel"])["panel"].drop_duplicates()
    models = sorted(ok["model"].unique())
    series = sorted(ok["series"].unique())
    colours = dict(zip(models, sns.color_palette(PALETTE, len(models))))
    styles = {name: (LINE_STYLES[i % len(LINE_STYLES)], MARKERS[i % len(MARKERS)]) for i, name in enumerate(series)}
    columns = min(len(panels), COLUMNS)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL[0] * columns + 0.4, PANEL[1] * rows + 0.9), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        data = ok[ok["panel"] == panel]
        for (model, name), line in data.groupby(["model", "series"], sort=True):
            line = line.sort_values("batch_size")
            style, marker = styles[name]
            ax.plot(line["batch_size"], line["items_per_s"], linestyle=style, marker=marker, color=colours[model],
                    linewidth=1.8, markersize=6)
            ax.fill_between(line["batch_size"], line["low"], line["high"], color=colours[model], alpha=0.18,
                            linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        batches = sorted(data["batch_size"].unique())
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        plain_log_ticks(ax.yaxis)
        if len(batches) == 1:
            ax.set_xlim(batches[0] / 1.5, batches[0] * 1.5)
        unit = UNITS[data["input_kind"].iloc[0]]
        ax.set_xlabel(f"batch size ({unit} per step, log scale)", fontsize=9)
        ax.set_ylabel(f"throughput ({unit}/s, log scale)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_title(panel, fontsize=10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    model_handles = [Line2D([], [], color=colours[m], linewidth=3, label=m) for m in models]
    series_handles = [
        Line2D([], [], color="#444444", linestyle=styles[n][0], marker=styles[n][1], label=n) for n in series
    ]
    fig.suptitle("Throughput vs batch size\n(median of the timed repeats; band = interquartile range)", fontsize=10)
    fig.tight_layout()
    series_title = ("machine/device" if ok["machine"].nunique() > 1 else "device") + " (line)"
    first = fig.legend(handles=model_handles, title="model (colour)", loc="upper right", bbox_to_anchor=(0.5, 0.0),
                       ncol=max(1, min(len(models), 6) // 3 + (len(models) > 3)), frameon=False, fontsize=8,
                       title_fontsize=9)
    fig.add_artist(first)
    fig.legend(handles=series_handles, title=series_title, loc="upper left", bbox_to_anchor=(0.52, 0.0),
               frameon=False, fontsize=8, title_fontsize=9)
    save(fig, png, svg)

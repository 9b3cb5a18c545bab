"""The throughput plot: items/s against batch size, per model and device."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from speedatlas.present.plots.style import MODE_TITLES, PALETTE, apply_style, placeholder, save  # noqa: E402

LINE_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]
PANEL_KEYS = ("mode", "dtype", "variant", "torch_requested", "workload")
PANEL_NAMES = {"torch_requested": "torch", "mode": ""}
# Token models' items are sequences; a panel holds one kind of input, so its unit is one.
UNITS = {"image": "images", "tokens": "sequences"}
KIND_TITLES = {"image": "image models", "tokens": "token models"}


def _panel_title(row: pd.Series, keys: list[str]) -> str:
    parts = []
    for key in keys:
        if key == "input_kind":
            parts.append(KIND_TITLES[row[key]])
            continue
        value = MODE_TITLES.get(row[key], row[key]) if key == "mode" else row[key]
        parts.append(f"{PANEL_NAMES.get(key, key)} {value}".strip())
    return " · ".join(parts)


def _plain_number(value: float, _position=None) -> str:
    """Log-axis tick labels as plain numbers (1, 20, 500, 1,000), not 5×10^2."""
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:g}"


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
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns + 2.4, 4.3 * rows), squeeze=False)
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
        ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(_plain_number))
        ax.yaxis.set_minor_formatter(mticker.NullFormatter())
        if len(batches) == 1:
            ax.set_xlim(batches[0] / 1.5, batches[0] * 1.5)
        unit = UNITS[data["input_kind"].iloc[0]]
        ax.set_xlabel(f"batch size ({unit} per step, log scale)")
        ax.set_ylabel(f"throughput ({unit}/s, log scale)")
        ax.set_title(panel)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    model_handles = [Line2D([], [], color=colours[m], linewidth=3, label=m) for m in models]
    series_handles = [
        Line2D([], [], color="#444444", linestyle=styles[n][0], marker=styles[n][1], label=n) for n in series
    ]
    first = fig.legend(handles=model_handles, title="model (colour)", loc="upper left", bbox_to_anchor=(1.0, 0.95),
                       frameon=False)
    fig.add_artist(first)
    fig.legend(handles=series_handles, title=("machine/device" if ok["machine"].nunique() > 1 else "device")
               + " (line)", loc="lower left", bbox_to_anchor=(1.0, 0.05), frameon=False)
    fig.suptitle("Throughput vs batch size (median of the timed repeats; band = interquartile range)")
    fig.tight_layout()
    save(fig, png, svg)

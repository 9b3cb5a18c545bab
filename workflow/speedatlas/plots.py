"""Seaborn figures of the aggregated tables. Never imports benchmark code."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"


def _label(row: pd.Series) -> str:
    return f"{row['model']} · {row['device']}"


def throughput_vs_batch(cells: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """Images/s against batch size, one panel per mode × dtype, one line per model and device.

    The band is the interquartile range of the step times, turned into images/s.
    """
    ok = cells[cells["status"] == "ok"].copy()
    sns.set_theme(style="whitegrid", context="notebook")
    if ok.empty:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no cell ran successfully", ha="center", va="center")
        ax.set_axis_off()
    else:
        ok["line"] = ok.apply(_label, axis=1)
        ok["low"] = ok["batch_size"] / ok["q3_s"]
        ok["high"] = ok["batch_size"] / ok["q1_s"]
        ok["panel"] = ok["mode"] + " · " + ok["dtype"]
        if ok["workload"].nunique() > 1:  # a whole epoch and a resident batch are different things
            ok["panel"] = ok["workload"] + " · " + ok["panel"]
        if ok["machine"].nunique() > 1:
            ok["line"] = ok["machine"] + " · " + ok["line"]
        panels = sorted(ok["panel"].unique())
        lines = sorted(ok["line"].unique())
        colors = dict(zip(lines, sns.color_palette(PALETTE, len(lines))))
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, sharey=False)
        for ax, panel in zip(axes[0], panels):
            data = ok[ok["panel"] == panel]
            for line in lines:
                series = data[data["line"] == line].sort_values("batch_size")
                if series.empty:
                    continue
                ax.plot(series["batch_size"], series["items_per_s"], marker="o", color=colors[line], label=line)
                ax.fill_between(series["batch_size"], series["low"], series["high"], color=colors[line], alpha=0.2)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            batches = sorted(data["batch_size"].unique())
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.set_xlabel("batch size (images per step)")
            ax.set_ylabel("throughput (images/s, log scale)")
            ax.set_title(panel)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            more_h, more_l = ax.get_legend_handles_labels()
            for h, label in zip(more_h, more_l):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
        fig.legend(handles, labels, title="model · device", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.suptitle("Throughput vs batch size (median, band = IQR)")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130, bbox_inches="tight")
    if svg:
        fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)

"""The torch-version figure: throughput of each cell under every torch version, side by side.

Orchestration side (seaborn, matplotlib). Reads only the cells table.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from speedatlas.analyze.version_axis import AXIS, label, version_key  # noqa: E402
from speedatlas.present.plots.style import PALETTE, apply_style, placeholder, save  # noqa: E402


def _case(row: pd.Series) -> str:
    text = f"{row['model']}\n{row['mode']} · batch {row['batch_size']}"
    return text if row["variant"] == "eager" else f"{text} · {row['variant']}"


def throughput_by_torch_version(cells: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """Images/s per cell, one marker per torch version (actual build, requested prefix), IQR bars.

    One panel per device × dtype (× machine); the y axis is logarithmic because models differ by
    orders of magnitude, and the versions of one cell sit next to each other.
    """
    ok = cells[cells["status"] == "ok"].copy()
    if ok.empty:
        placeholder(png, svg, "No cell ran successfully: no throughput to show.")
        return
    apply_style()
    ok["version"] = [label(r, a) for r, a in zip(ok[AXIS], ok["torch_version"])]
    ok["case"] = ok.apply(_case, axis=1)
    ok["panel"] = ok["device"] + " · " + ok["dtype"]
    if ok["machine"].nunique() > 1:
        ok["panel"] = ok["machine"] + " · " + ok["panel"]
    ok["low"] = ok["batch_size"] / ok["q3_s"]
    ok["high"] = ok["batch_size"] / ok["q1_s"]
    versions = sorted(ok["version"].unique(), key=lambda v: version_key(v.split(" ")[0]))
    colors = dict(zip(versions, sns.color_palette(PALETTE, len(versions))))
    markers = dict(zip(versions, "osD^vP*Xph"[: len(versions)] if len(versions) <= 10 else ["o"] * len(versions)))
    panels = sorted(ok["panel"].unique())
    cases = sorted(ok["case"].unique())
    width = max(5.0, 1.1 * len(cases) + 2)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.8 * len(panels)), squeeze=False)
    step = 0.7 / max(1, len(versions))
    for ax, panel in zip(axes[:, 0], panels):
        data = ok[ok["panel"] == panel]
        for i, version in enumerate(versions):
            series = data[data["version"] == version]
            if series.empty:
                continue
            x = [cases.index(c) - 0.35 + step * (i + 0.5) for c in series["case"]]
            y = series["items_per_s"].to_numpy()
            err = [y - series["low"].to_numpy(), series["high"].to_numpy() - y]
            ax.errorbar(x, y, yerr=err, fmt=markers[version], color=colors[version], capsize=3,
                        markersize=7, linestyle="none", label=version)
        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=8)
        ax.grid(axis="x", visible=False)
        ax.grid(axis="y", which="both", alpha=0.5)
        for boundary in range(1, len(cases)):
            ax.axvline(boundary - 0.5, color="0.85", linewidth=0.8)
        ax.set_xticks(range(len(cases)), cases, fontsize=9)
        ax.set_xlim(-0.6, len(cases) - 0.4)
        tokens = "input_kind" in data and bool((data["input_kind"] == "tokens").any())
        unit = ("sequences" if data["input_kind"].eq("tokens").all() else "images or sequences") if tokens else "images"
        ax.set_xlabel(f"cell (model, mode · batch size in {unit} per step)")
        ax.set_ylabel(f"throughput ({unit}/s, log scale)")
        ax.set_title(panel)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, text in zip(*ax.get_legend_handles_labels()):
            if text not in labels:
                handles.append(h)
                labels.append(text)
    fig.legend(handles, labels, title="torch (requested)", loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    fig.suptitle("Throughput by torch version (median, bars = IQR)")
    fig.tight_layout()
    save(fig, png, svg)

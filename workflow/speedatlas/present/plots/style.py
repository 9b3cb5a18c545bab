"""The one style and the one saver every figure uses, from the aggregated tables only.

Never imports benchmark code: every figure is a function of results/tables/*, so a style change
reruns plots, never cells. Colours are colour-blind safe (seaborn's `colorblind` palette for
categories; blue/orange for faster/slower, which reads the same with every common colour-vision
deficiency), every axis names its unit, and figures are saved as PNG and SVG with fixed metadata
so the same tables give the same files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"
MODE_ORDER = ("train", "infer")
MODE_TITLES = {"train": "training", "infer": "inference"}


def apply_style() -> None:
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    plt.rcParams["svg.hashsalt"] = "speedatlas"  # stable SVG ids: same tables, same file


def plain_number(value: float, _position=None) -> str:
    """Log-axis tick labels as plain numbers (1, 20, 500, 1,000), not 5×10^2."""
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:g}"


def plain_log_ticks(axis, suffix: str = "") -> None:
    """Ticks of a logarithmic axis at 1, 2 and 5 times powers of ten, labelled as plain numbers
    (with `suffix`, e.g. "×" for speed-ups); unlabelled minor ticks (on an axis under a decade
    wide matplotlib labels every minor tick, as 3×10^-1, and they overprint each other)."""
    axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mticker.FuncFormatter(lambda value, position: plain_number(value, position) + suffix))
    axis.set_minor_formatter(mticker.NullFormatter())


def save(fig: plt.Figure, png: str, svg: str | None = None) -> None:
    """PNG (150 dpi) and SVG, without timestamps, so reruns give identical files."""
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    if svg:
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)


def placeholder(png: str, svg: str | None, message: str) -> None:
    """A small figure that says why there is nothing to plot (the rule's outputs must exist)."""
    apply_style()
    fig, ax = plt.subplots(figsize=(6.5, 1.6))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    ax.set_axis_off()
    save(fig, png, svg)

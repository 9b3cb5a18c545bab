"""The speed-up heatmap: model × batch size, one panel per comparison and mode."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from speedatlas.present.formatting import figures
from speedatlas.present.plots.style import MODE_ORDER, MODE_TITLES, apply_style, placeholder, save

# Orange (candidate slower) - white (equal) - blue (candidate faster).
SPEEDUP_CMAP = sns.diverging_palette(35, 245, s=85, l=55, center="light", as_cmap=True)
# Context keys shown in a panel title when they take several values.
CONTEXT_KEYS = ("machine", "workload", "torch_requested", "device", "dtype", "variant")
CONTEXT_NAMES = {"torch_requested": "torch"}
AXIS_ORDER = ("device", "machine_device", "torch_requested", "dtype", "variant")


def _interval(row) -> str:
    if not row.significant:
        return "n.s."
    _, low, high = figures(row.speedup, row.ci_low, row.ci_high)
    return f"{low}–{high}"


def comparison_panels(speedups: pd.DataFrame, axes: Sequence[str] = ("machine_device", "device")) -> pd.DataFrame:
    """The heatmap's rows: speed-ups of the given axes, each with a `panel` title and `mode`.

    A panel is one comparison (candidate vs baseline, with the keys that vary in the study and
    are not already named: machine, dtype, torch, …) and one mode; within it model × batch size.
    """
    frame = speedups[speedups["axis"].isin(axes)].copy()
    if frame.empty:
        return frame.assign(panel=pd.Series(dtype=str))
    varying = [k for k in CONTEXT_KEYS if frame[k].nunique() > 1]
    if "machine" not in varying and (speedups["machine"].nunique() > 1 or (frame["axis"] == "machine_device").any()):
        varying.insert(0, "machine")  # several machines in the study: name the one a device pair is on
    titles = []
    for row in frame.itertuples():
        covered = {"machine", "device"} if row.axis == "machine_device" else {row.axis}
        context = [f"{CONTEXT_NAMES.get(k, k)} {getattr(row, k)}" for k in varying if k not in covered | {"machine"}]
        title = f"{row.candidate} vs {row.baseline}"
        if row.axis == "torch_requested":
            title = f"torch {row.candidate} vs {row.baseline}"
        if "machine" in varying and "machine" not in covered:
            title = f"{row.machine}: {title}"
        titles.append(title + (f" ({', '.join(context)})" if context else ""))
    frame["panel"] = titles
    frame["axis_rank"] = frame["axis"].map({a: i for i, a in enumerate(AXIS_ORDER)}).fillna(len(AXIS_ORDER))
    return frame


def speedup_heatmap(
    speedups: pd.DataFrame,
    png: str,
    svg: str | None = None,
    axes: Sequence[str] = ("machine_device", "device"),
    title: str = "Speed-up of the candidate over the baseline (ratio of median step times)",
    confidence: float = 0.95,
) -> None:
    """Model × batch-size heatmaps of speed-ups, one panel per comparison and mode.

    Each cell shows the speed-up and, below it, its confidence interval (or `n.s.` when the
    interval includes 1). Colour is log-scaled and centred on 1: blue = candidate faster,
    orange = slower; the scale is shared by all panels. Generic over `axes`, so other
    comparisons (torch versions, dtypes) can reuse it.
    """
    frame = comparison_panels(speedups, axes)
    if frame.empty:
        placeholder(png, svg, "No device or machine comparison in this study:\n"
                              "only one device produced results.")
        return
    apply_style()
    panels = frame.sort_values(["axis_rank", "panel"])["panel"].drop_duplicates().tolist()
    modes = [m for m in MODE_ORDER if m in set(frame["mode"])] + sorted(set(frame["mode"]) - set(MODE_ORDER))
    # Each row of panels shows only its own models and batch sizes: shared axes padded a
    # comparison of one cell with a grid of "not measured".
    rows = [frame[frame["panel"] == panel] for panel in panels]
    models_of = [sorted(part["model"].unique()) for part in rows]
    batches_of = [sorted(part["batch_size"].unique()) for part in rows]
    widest = max(len(b) for b in batches_of)
    limit = max(1.0, float(np.nanmax(np.abs(np.log2(frame["speedup"].astype(float))))))
    norm = mcolors.TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit)

    width = 0.85 * widest + 1.3
    heights = [0.5 * len(m) + 0.75 for m in models_of]
    fig, grid = plt.subplots(
        len(panels), len(modes), figsize=(width * len(modes) + 1.6, sum(heights) + 1.0),
        squeeze=False, layout="constrained", gridspec_kw={"height_ratios": heights},
    )
    fig.get_layout_engine().set(h_pad=0.1)
    for i, panel in enumerate(panels):
        models, batches = models_of[i], batches_of[i]
        for j, mode in enumerate(modes):
            ax = grid[i][j]
            data = rows[i][rows[i]["mode"] == mode]
            values = data.pivot_table(index="model", columns="batch_size", values="speedup", aggfunc="first")
            values = values.reindex(index=models, columns=batches)
            image = ax.imshow(np.log2(values.to_numpy(dtype=float)), cmap=SPEEDUP_CMAP, norm=norm, aspect="auto")
            ax.set_facecolor("#f0f0f0")
            ax.grid(False)
            for y, x in zip(*np.nonzero(values.isna().to_numpy())):
                ax.text(x, y, "not\nmeasured", ha="center", va="center", fontsize=6.5, color="#777777")
            for row in data.itertuples():
                y, x = models.index(row.model), batches.index(row.batch_size)
                shade = abs(np.log2(row.speedup)) / limit
                colour = "white" if shade > 0.6 else "#222222"
                ax.text(x, y - 0.12, f"{figures(row.speedup, row.ci_low, row.ci_high)[0]}×", ha="center", va="center", fontsize=9,
                        fontweight="bold", color=colour)
                ax.text(x, y + 0.24, _interval(row), ha="center", va="center", fontsize=6.5, color=colour,
                        fontstyle="italic" if not row.significant else "normal")
            ax.set_xticks(range(len(batches)), [str(b) for b in batches], fontsize=8)
            ax.set_yticks(range(len(models)), models if j == 0 else [], fontsize=8)
            ax.set_title(f"{panel}\n{MODE_TITLES.get(mode, mode)}", fontsize=8.5)
            if i == len(panels) - 1:
                ax.set_xlabel("batch size", fontsize=8)
    ticks = [t for t in range(-int(math.floor(limit)), int(math.floor(limit)) + 1)]
    bar = fig.colorbar(image, ax=grid, shrink=min(1.0, 4.0 / max(1, sum(heights))), ticks=ticks, aspect=25,
                       fraction=0.04)
    bar.ax.set_yticklabels([f"{2.0**t:g}×" if t >= 0 else f"1/{2.0**-t:g}×" for t in ticks],
                           fontsize=7)  # 1/8×, not 0.125×
    bar.set_label("speed-up (log scale; >1: candidate faster)", fontsize=8)
    fig.suptitle(f"{title}\nin each cell: speed-up and its {confidence:.0%} interval (n.s.: it includes 1)",
                 fontsize=9.5)
    save(fig, png, svg)

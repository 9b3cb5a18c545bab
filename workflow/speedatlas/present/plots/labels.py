"""Point labels that name every key telling cells apart, placed where they overlap nothing.

Two cells of one row or panel often sit at nearly the same point (batch 4 and 64 of one model,
both just above the noise threshold), and labels written at a fixed offset then print over each
other ("bs 64bs 4"). `place` tries positions around each point, nearest first, and keeps the first
whose text box overlaps no other label and no marker; a label that had to move away from its
point gets a thin leader line. `cell_label` writes what the plot's colour, marker and panel do not
already say (batch size, dtype, variant, torch, ...), so no two labelled cells read the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# Keys that can tell two cells apart, in the order a label names them, and their short names.
LABEL_KEYS = ("machine", "device", "model", "workload", "torch_requested", "dtype", "mode", "variant", "batch_size")
SHORT = {"torch_requested": "torch ", "batch_size": "bs ", "workload": "", "machine": "", "device": "",
         "model": "", "dtype": "", "mode": "", "variant": ""}
# Names of keys in axis titles and legends.
SHORT_NAMES = {"torch_requested": "torch", "batch_size": "batch"}
# Offsets (points) tried around a point: right or left of it without a line first (a label beside
# its point reads as its own), then every direction further out, with a leader line.
RINGS = (7, 16, 28, 42, 60)
BESIDE = ((1, 0), (-1, 0))
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
MARKER_PT = 4.0  # half the side of the box a marker keeps free, in points


def varying(frame: pd.DataFrame, keys: Iterable[str] = LABEL_KEYS) -> list[str]:
    """The keys (in LABEL_KEYS order) that take more than one value in `frame`."""
    return [k for k in LABEL_KEYS if k in keys and k in frame and frame[k].nunique(dropna=False) > 1]


def cell_label(row: pd.Series, keys: Sequence[str]) -> str:
    """'bs 64 · bfloat16': the row's values of `keys` (those the plot does not show otherwise)."""
    parts = []
    for key in keys:
        value = row[key]
        parts.append(f"{SHORT.get(key, key + ' ')}{value}")
    return " · ".join(parts)


def label_keys(frame: pd.DataFrame, shown: Iterable[str], always: Sequence[str] = ("batch_size",)) -> list[str]:
    """Keys a point label must name: those that vary in `frame` and are not `shown` by colour,
    marker, row or panel, plus `always` (the batch size: the one key a reader looks for)."""
    shown = set(shown)
    keys = [k for k in varying(frame) if k not in shown]
    return [k for k in LABEL_KEYS if k in keys or (k in always and k not in shown and k in frame)]


def _overlaps(box: Bbox, others: list[Bbox]) -> bool:
    return any(box.overlaps(other) for other in others)


def place(ax: plt.Axes, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
          fontsize: float = 7.0, avoid: Sequence[tuple[float, float]] = ()) -> list[Annotation]:
    """Annotate each point (data coordinates) with its text where the text stays inside the axes
    and overlaps no other label and no marker (the points themselves and `avoid`). Call it after the figure's layout
    is final (tight_layout, or a constrained layout drawn once): positions are checked on the
    canvas. Returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()  # limits and layout final: display positions hold until the figure is saved
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    half = MARKER_PT * scale
    points = [*zip(xs, ys), *avoid]
    centres = ax.transData.transform(points) if points else []
    markers = [Bbox.from_bounds(x - half, y - half, 2 * half, 2 * half) for x, y in centres]
    inside = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    out = []
    order = sorted(range(len(texts)), key=lambda i: (-float(ys[i]), float(xs[i])))
    for i in order:
        chosen = None
        for ring, distance in enumerate(RINGS):
            for dx, dy in BESIDE if ring == 0 else DIRECTIONS:
                ann = ax.annotate(
                    texts[i], (xs[i], ys[i]), xytext=(dx * distance, dy * distance * 0.7), textcoords="offset points",
                    ha="left" if dx > 0 else "right" if dx < 0 else "center",
                    va="bottom" if dy > 0 else "top" if dy < 0 else "center", fontsize=fontsize,
                    arrowprops={"arrowstyle": "-", "color": "0.55", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3}
                    if ring else None,
                    annotation_clip=False,
                )
                ann.set_in_layout(False)
                ann.update_positions(renderer)
                box = Text.get_window_extent(ann, renderer).padded(1.0 * scale)
                fits = inside.containsx(box.x0) and inside.containsx(box.x1) and inside.containsy(box.y0) \
                    and inside.containsy(box.y1)
                if fits and not _overlaps(box, placed) and not _overlaps(box, markers):
                    chosen = (ann, box)
                    break
                ann.remove()
            if chosen:
                break
        if chosen is None:  # nowhere free: the first place, beside the point
            ann = ax.annotate(texts[i], (xs[i], ys[i]), xytext=(RINGS[0], 0), textcoords="offset points",
                              ha="left", va="center", fontsize=fontsize, annotation_clip=False)
            ann.set_in_layout(False)
            ann.update_positions(renderer)
            chosen = (ann, Text.get_window_extent(ann, renderer))
        placed.append(chosen[1])
        out.append(chosen[0])
    return out

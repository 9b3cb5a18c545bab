"""PyTorch or MLX, as one figure: the speed-up of each MLX cell over its torch cell, with its
interval, from results/tables/torch_vs_mlx.parquet only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from speedatlas.present.plots.style import MODE_TITLES, PALETTE, apply_style, placeholder, plain_log_ticks, save

LABELS = {"mlx": "MLX vs torch eager", "mlx_compile": "mx.compile vs torch.compile"}


def torch_vs_mlx_plot(table: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """One row per pair (model, dtype, mode, batch; device and machine where several), the
    speed-up on a log axis with its interval as a bar; right of the line at 1, MLX is faster."""
    ok = table[table["speedup"].notna()].copy() if "speedup" in table else table.iloc[0:0]
    if ok.empty:
        placeholder(png, svg, "No MLX cell has a torch cell to compare with: see the report's PyTorch or MLX section.")
        return
    apply_style()
    several = [k for k in ("machine", "device") if ok[k].nunique() > 1]
    ok["row"] = [
        " · ".join([*(str(r[k]) for k in several), r["model"], r["dtype"], MODE_TITLES.get(r["mode"], r["mode"]),
                    f"batch {r['batch_size']}"])
        for _, r in ok.iterrows()
    ]
    rows = list(dict.fromkeys(ok.sort_values(["model", "mode", "dtype", "batch_size"])["row"]))
    variants = [v for v in LABELS if v in set(ok["mlx_variant"])]
    colours = dict(zip(variants, sns.color_palette(PALETTE, len(variants))))
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.42 * len(rows) * len(variants)))
    step = 0.8 / len(variants)
    for offset, variant in enumerate(variants):
        part = ok[ok["mlx_variant"] == variant]
        y = np.array([rows.index(r) for r in part["row"]]) + (offset - (len(variants) - 1) / 2) * step
        value = part["speedup"].astype(float).to_numpy()
        low = part["ci_low"].astype(float).to_numpy()
        high = part["ci_high"].astype(float).to_numpy()
        ax.errorbar(value, y, xerr=[value - low, high - value], fmt="o", color=colours[variant], capsize=3,
                    label=LABELS[variant])
    ax.axvline(1.0, color="0.3", linewidth=1)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis, suffix="×")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of MLX over torch (torch time / MLX time; right of 1: MLX faster)")
    devices = ", ".join(sorted(ok["device"].unique()))
    ax.set_title(f"PyTorch or MLX, same model, weights and dtype ({devices})")
    ax.legend(fontsize=8, loc="best")
    save(fig, png, svg)

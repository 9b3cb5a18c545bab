"""Throughput against power per device, from the aggregated cells table only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from speedatlas.present.plots.style import MODE_TITLES, PALETTE, apply_style, placeholder, save


def energy_plot(cells: pd.DataFrame, png: str, svg: str | None = None) -> None:
    """Throughput (items/s) against average power (W), one colour per device, one marker per
    mode; the dashed line of each colour is that device's idle power."""
    if "avg_power_w" not in cells:
        placeholder(png, svg, "No energy columns in these tables.")
        return
    ok = cells[(cells["status"] == "ok") & cells["avg_power_w"].notna() & cells["items_per_s"].notna()].copy()
    if ok.empty:
        placeholder(png, svg, "No cell had an energy counter: see the report's Energy section.")
        return
    apply_style()
    several = ok["machine"].nunique() > 1
    ok["series"] = (ok["machine"] + "/" + ok["device"]) if several else ok["device"]
    series = sorted(ok["series"].unique())
    colours = dict(zip(series, sns.color_palette(PALETTE, len(series))))
    markers = {"train": "o", "infer": "s"}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name in series:
        part = ok[ok["series"] == name]
        for mode, group in part.groupby("mode"):
            ax.scatter(group["avg_power_w"].astype(float), group["items_per_s"].astype(float), color=colours[name],
                       marker=markers.get(mode, "^"), s=46, edgecolor="white", linewidth=0.5,
                       label=f"{name} {MODE_TITLES.get(mode, mode)}")
            for x, y, model, dtype in zip(group["avg_power_w"], group["items_per_s"], group["model"], group["dtype"]):
                ax.annotate(f"{model} {dtype}", (x, y), xytext=(4, 2), textcoords="offset points", fontsize=7)
        idle = part["idle_power_w"].dropna()
        if not idle.empty:
            ax.axvline(float(idle.median()), color=colours[name], linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("average power during the timed region (W; dashed: idle power)")
    kinds = set(ok["input_kind"].fillna("image")) if "input_kind" in ok else {"image"}
    unit = {"image": "images", "tokens": "sequences"}[kinds.pop()] if len(kinds) == 1 else "images or sequences"
    ax.set_ylabel(f"throughput ({unit}/s)")
    ax.set_title(f"Throughput vs power (up-left is more {unit} per joule)")
    ax.legend(fontsize=8, loc="best")
    save(fig, png, svg)

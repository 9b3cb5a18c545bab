"""The report section of the seed study, side by side: published epoch times next to ours, with
the sentences that say what explains each gap (the table: speedatlas.analyze.seed_side_by_side)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from speedatlas.present.formatting import format_ratio, markdown_table, missing, number, times


def _s(value: Any) -> str:
    return number(value, ".2f", empty="")


def _x(value: Any) -> str:
    return "" if missing(value) else times(value)


def _share(value: Any) -> str:
    return number(value, ".0%", empty="")


def _ratio(row: pd.Series) -> str:
    if pd.isna(row["speedup"]):
        return ""
    if pd.isna(row["speedup_ci_low"]):
        return _x(row["speedup"])
    return format_ratio(row["speedup"], row["speedup_ci_low"], row["speedup_ci_high"])


def explain(table: pd.DataFrame, baseline_device: str = "cpu") -> list[str]:
    """Sentences computed from the table: input share per device, and where our gap sits."""
    sentences = []
    measured = table[table["input_share"].notna()]
    for device, group in measured.groupby("device", sort=True):
        low, high = group["input_share"].min(), group["input_share"].max()
        worst = group.loc[group["input_share"].idxmax()]
        sentences.append(
            f"On {device}, waiting for the input pipeline takes {low:.0%}–{high:.0%} of an epoch "
            f"(most: {worst['model']} at batch {worst['batch_size']})."
        )
    gaps = table[table["speedup"].notna() & table["compute_only_speedup"].notna()]
    for row in gaps.itertuples():
        sentences.append(
            f"{row.model} batch {row.batch_size}: {row.device} is {row.speedup:.2f}× {baseline_device}'s speed over "
            f"whole epochs and {row.compute_only_speedup:.2f}× in compute alone."
        )
    unavailable = sorted(table.loc[table["status"] == "unavailable", "device"].unique())
    if unavailable:
        sentences.append(
            f"{', '.join(unavailable)} did not run on this machine (status unavailable): its published times "
            "stand alone; rerun this config on a machine that has it to fill in the gaps."
        )
    return sentences


def side_by_side_markdown(table: pd.DataFrame, notes: list[str], source: str, baseline_device: str = "cpu") -> str:
    """The report section 'Seed study, side by side'."""
    out = ["## Seed study, side by side\n"]
    out.append(
        f"Published figures from `{source}`"
        + (":\n\n" + "\n".join(f"> {line}" for line in notes if line) + "\n" if notes else ".\n")
    )
    if table.empty:
        out.append("_The published file has no rows._\n")
        return "\n".join(out)
    datasets = sorted(table["dataset"].dropna().unique())
    out.append(
        "Ours: the `mnist_epoch` workload (training, float32, random weights, "
        f"{' and '.join(datasets) if datasets else 'no epoch cell ran'}). *First epoch* follows the seed's "
        "protocol (one epoch, no warm-up) but ends with a device synchronize; *epoch* is the median of the "
        "timed epochs after it. *Input share* is the part of an epoch spent waiting for the DataLoader; "
        "*compute only* is the same images through the synthetic workload (batches already on the device, no "
        f"input pipeline). Speed-ups are over {baseline_device} (above 1: faster).\n"
    )
    out.extend(f"- {s}" for s in explain(table, baseline_device))
    out.append("")
    view = pd.DataFrame(
        {
            "model": table["model"],
            "batch": table["batch_size"],
            "device": table["device"],
            "published epoch s": table["published_epoch_s"].map(_s),
            "published speed-up": table["published_speedup"].map(_x),
            "ours: status": table["status"].where(table["status"] != "ok", ""),
            "first epoch s": table["first_epoch_s"].map(_s),
            "epoch s": table["epoch_s"].map(_s),
            "speed-up [95% CI]": table.apply(_ratio, axis=1),
            "input share": table["input_share"].map(_share),
            "compute only s": table["compute_only_epoch_s"].map(_s),
            "compute-only speed-up": table["compute_only_speedup"].map(_x),
        }
    )
    out.append(markdown_table(view, markup=["speed-up [95% CI]"]))
    stated = table[table["published_speedup_stated"].notna() & table["published_speedup"].notna()]
    if len(stated):
        worst = (stated["published_speedup_stated"] / stated["published_speedup"] - 1).abs().max()
        out.append(
            f"The speed-ups the source states agree with the ratios of its epoch times to within {worst:.1%}.\n"
        )
    return "\n".join(out)

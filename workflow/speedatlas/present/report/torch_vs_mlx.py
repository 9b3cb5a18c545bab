"""The report's "PyTorch or MLX" section, from results/tables/torch_vs_mlx.parquet and its plot."""

from __future__ import annotations

import pandas as pd

from speedatlas.present.formatting import MISSING, escape_markdown, format_speedup, markdown_table, number

COMPARISON = {"mlx": "MLX vs torch eager", "mlx_compile": "mx.compile vs torch.compile"}
# An MLX cell without an ok partner (not in the study, or not ok): what it is, not a comparison.
UNPAIRED = {"mlx": "MLX (no ok torch eager cell)", "mlx_compile": "mx.compile (no ok torch.compile cell)"}

MEANING = """\
Each MLX cell runs the same architecture as its torch cell (an MLX port: torchvision's ResNets,
the built-in transformers), with the seeded torch model's weights copied in (convolution weights
transposed to MLX's channels-last layout), on the same seeded batch resident on the device.
Before any timing it proves that it computes the same function: one inference forward of both
on the same input, `parity_max_rel_err` = max |MLX − torch| / max |torch| of the logits; a cell
outside its dtype's tolerance is an error and is never timed. Both sides are synchronised the
same way per timed block (torch: the device's synchronize; MLX: every step ends in `mx.eval` of
the loss, the parameters and the optimizer state, or of the output, then `mx.synchronize()`),
run the same step (forward, cross-entropy, backward, Adam lr 1e-3 with bias correction; or the
forward alone), and keep compilation out of the samples (`compile_time_s`).

What differs, by design of the frameworks: **dtype** — torch's float16/bfloat16 cells run under
`torch.autocast` (float32 weights and optimizer, convolutions and matmuls in the low precision,
norms and softmax in float32), MLX has no autocast, so its float16/bfloat16 cells hold weights,
activations, gradients and Adam's moments in that dtype (`compute_dtype` records what the layers
produced on both sides; float16 MLX training has no loss scaling and may end `nonfinite`).
**Layout** — MLX computes images channels-last (NHWC); torch eager is channels-first unless the
`channels_last` variant is in the study. **TF32** — on CUDA MLX runs float32 matmuls and
convolutions in TF32 by default (`MLX_ENABLE_TF32`), torch's default keeps float32 matmuls in full
precision and lets cuDNN convolutions use TF32. **Host share** is not measured for MLX cells (MLX
has no event timer). Speed-up = torch's median time / MLX's (above 1: MLX is faster), interval as
in the speed-up tables.
"""


def section(table: pd.DataFrame, plot: str | None, confidence: float = 0.95) -> str:
    """Markdown of the section ('## PyTorch or MLX'); `plot` is the figure's path relative to the
    report."""
    out = ["## PyTorch or MLX\n", MEANING]
    if table.empty:
        out.append("No MLX cell in this study.\n")
        return "\n".join(out)
    versions = ", ".join(sorted({str(v) for v in table["mlx_version"].dropna()})) or MISSING
    torches = ", ".join(sorted({str(v) for v in table["torch_version"].dropna()})) or MISSING
    devices = ", ".join(sorted({str(v) for v in table["mlx_device"].dropna()})) or MISSING
    out.append(f"MLX {escape_markdown(versions)} on {escape_markdown(devices)}, beside torch {escape_markdown(torches)}. "
               f"Intervals: {confidence:.0%}; `n.s.`: the interval includes 1.\n")
    out.append(markdown_table(_rows(table), markup=["speed-up"]))
    failed = table[table["status"] != "ok"]
    if not failed.empty:
        out.append(f"{len(failed)} MLX cell(s) did not run ok: their status and error are in the table above "
                   "and under \"Cells that did not run\".\n")
    if plot:
        out.append(f"![PyTorch or MLX: speed-up of MLX over torch per cell]({plot})\n")
    return "\n".join(out)


def _rows(table: pd.DataFrame) -> pd.DataFrame:
    several = table["machine"].nunique() > 1
    rows = []
    for row in table.itertuples(index=False):
        paired = not pd.isna(row.speedup)
        rows.append({
            **({"machine": row.machine} if several else {}),
            "model": row.model,
            "device": row.device,
            "dtype": row.dtype,
            "mode": row.mode,
            "batch": row.batch_size,
            "comparison": COMPARISON.get(row.mlx_variant, row.mlx_variant) if paired else UNPAIRED.get(row.mlx_variant, row.mlx_variant),
            "speed-up": format_speedup(row) if paired else MISSING,
            "torch s/step": number(row.torch_median_s, ".4g"),
            "MLX s/step": number(row.mlx_median_s, ".4g"),
            "parity (tolerance)": _parity(row),
            "MLX status": row.status if row.status == "ok" else f"{row.status}: {row.error}",
        })
    return pd.DataFrame(rows)


def _parity(row) -> str:
    if pd.isna(row.parity_max_rel_err):
        return MISSING
    tolerance = "" if pd.isna(row.parity_tolerance) else f" ({row.parity_tolerance:g})"
    return f"{row.parity_max_rel_err:.2g}{tolerance}"

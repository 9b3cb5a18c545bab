"""The report section 'dtype support (measured)': the probes' matrix, the write-up's mps claims
beside it, and the errors in full (the table itself: speedatlas.analyze.dtype_support_table)."""

from __future__ import annotations

import pandas as pd

from speedatlas.measure.dtype_probe import OUTCOMES
from speedatlas.present.formatting import escape_markdown, markdown_table, word_list


def _cell(row: pd.Series) -> str:
    """One matrix entry: the outcome, with the drift or a short reason."""
    outcome = row["outcome"]
    if outcome == "runs":
        text = f"runs ({row['drift']:.1e})"
    elif outcome == "drift":
        text = f"**drift {row['drift']:.1e}** > {row['tolerance']:.0e}"
    elif outcome == "nonfinite":
        text = "**non-finite**"
    elif outcome == "raises":
        text = f"**raises** ({escape_markdown(row['error_kind'] or 'error')})"
    elif outcome == "crashes":
        text = "**crashes**"
    else:
        text = str(outcome)
    if isinstance(row.get("note"), str) and row["note"]:
        text += " †"
    return text


SUPPORT_METHOD = """\
Measured, not quoted: for each device × dtype × mode, a seeded `{model}` ({input_size}×{input_size},
batch {batch}) runs on the device and is compared with a float32 run on the CPU with the same
weights and inputs. *infer* compares the logits (drift = max |x − ref| / max |ref|); *train*
runs {train_steps} Adam steps (lr 0.001) on the batch and compares how far its loss fell
(drift = |Δ − Δref| / |Δref|, Δ = first loss − loss after the steps; the loss after a few Adam
steps is itself chaotic in low precision, its fall is not).
Methods: *autocast* = `torch.autocast`, as speedatlas's timing cells run float16/bfloat16; *cast* =
model and inputs converted to the dtype. An outcome is *runs* when the output is finite and the
drift (in parentheses) is within the dtype's tolerance (inference: {tol_infer}; training:
{tol_train}), *drift* beyond it, *non-finite*, *raises* (the exception is listed below), *crashes*
(the process died), or *unavailable*. Pure float16 training with Adam is expected to go
non-finite: Adam's eps (1e-8) underflows to 0 in float16; that is why real float16 training
(and speedatlas) uses autocast.
"""


# The claims a 2025 write-up (M2, recent PyTorch) makes about dtypes on mps, which the matrix
# tests on the user's own torch (seed-study §3).
MPS_CLAIMS = {
    "float32": "supported, the safe default",
    "float16": "limited: some ops raise, results may be inaccurate or fall back to CPU",
    "bfloat16": "not supported",
}


def claims_markdown(table: pd.DataFrame, device: str = "mps") -> str:
    """The blog's claimed mps table beside what this torch measurably does on mps."""
    rows = []
    for dtype, claim in MPS_CLAIMS.items():
        measured = table[(table["device"] == device) & (table["dtype"] == dtype)]
        if measured.empty:
            verdict = "not probed"
        elif (measured["outcome"] == "unavailable").all():
            verdict = "not measured here (no mps on this machine)"
        else:
            verdict = "; ".join(
                f"{r.mode} · {r.method}: {r.outcome}" + (f" ({r.drift:.1e})" if pd.notna(r.drift) else "")
                for r in measured.itertuples()
            )
        rows.append({"dtype": dtype, "claimed for mps (2025 write-up)": claim, "measured on mps": verdict})
    return "The write-up's claims beside the measurement:\n\n" + markdown_table(pd.DataFrame(rows))


def support_markdown(table: pd.DataFrame) -> str:
    """The report section 'dtype support (measured)': a matrix, then the errors in full."""
    out = ["## dtype support (measured)\n"]
    if table.empty:
        out.append("_The dtype support probes are turned off (`dtype_support.enabled: false`)._\n")
        return "\n".join(out)
    first = table.iloc[0]
    tol = {mode: ", ".join(f"{d} {t:g}" for d, t in table[table["mode"] == mode].groupby("dtype", sort=False)["tolerance"].first().items())
           for mode in ("infer", "train")}
    out.append(
        SUPPORT_METHOD.format(model=first["model"], input_size=first["input_size"], batch=first["batch_size"],
                              train_steps=first["train_steps"], tol_infer=tol["infer"] or "-", tol_train=tol["train"] or "-")
    )
    frame = table.copy()
    frame["entry"] = frame.apply(_cell, axis=1)
    frame["torch_version"] = frame["torch_version"].fillna(frame["torch_requested"])
    index = ["machine", "torch_version", "device", "dtype", "method"]
    wide = frame.pivot_table(index=index, columns="mode", values="entry", aggfunc="first", sort=False)
    wide = wide[[m for m in ("infer", "train") if m in wide]].reset_index().fillna("")
    wide = wide.rename(columns={"torch_version": "torch"})
    wide.columns.name = None
    if wide["machine"].nunique() == 1:
        wide = wide.drop(columns="machine")
    # Rows of devices that are not on the machine say only "unavailable": said once, not shown.
    modes = [m for m in ("infer", "train") if m in wide]
    frame_rows = frame.groupby(["machine", "device"])["outcome"].apply(lambda o: (o == "unavailable").all())
    gone = [key for key, all_unavailable in frame_rows.items() if all_unavailable]
    if gone:
        several = frame["machine"].nunique() > 1
        names = word_list(f"{d} on {m}" if several else d for m, d in gone)
        verb = "is" if len(gone) == 1 else "are"
        out.append(f"{names} {verb} not on {'its machine' if several else 'this machine'}, so "
                   f"{'its' if len(gone) == 1 else 'their'} dtypes could not be probed: run the study where "
                   f"{'it exists' if len(gone) == 1 else 'they exist'} to fill them in"
                   + (" (and to check the 2025 write-up's mps claims: float16 limited, bfloat16 not supported)"
                      if any(d == "mps" for _, d in gone) else "") + ".\n")
        machines = wide["machine"] if "machine" in wide else pd.Series(frame["machine"].iloc[0], index=wide.index)
        wide = wide[[(m, d) not in gone for m, d in zip(machines, wide["device"])]]
    if len(wide):
        out.append(markdown_table(wide, markup=modes))
    if (table[(table["device"] == "mps")]["outcome"] != "unavailable").any():
        out.append(claims_markdown(table))
    counts = frame[[(m, d) not in gone for m, d in zip(frame["machine"], frame["device"])]]["outcome"].value_counts()
    shown = [o for o in OUTCOMES if counts.get(o, 0)]
    if shown:
        out.append("Outcomes: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in shown) + ".\n")
    problems = table[table["error"].notna() & (table["outcome"] != "unavailable")]
    if len(problems):
        out.append("Errors, in full:\n")
        view = problems[["device", "dtype", "mode", "method", "outcome", "error"]]
        out.append(markdown_table(view))
    notes = table[table["note"].notna()]
    if len(notes):
        out.append("† " + "; ".join(sorted(set(f"{r.device} {r.dtype} {r.mode}: {r.note}" for r in notes.itertuples()))) + ".\n")
    return "\n".join(out)

"""How figures and data are written for people: one home for every number format and for
Markdown tables, used by the report, its sections and the plots.

Figures: a ratio is '5.20×', with its interval '5.20× [4.90–5.50]'; a speed-up cell adds ' n.s.'
when its interval includes 1 and ' †' when a cell of the pair is host-bound; a missing value is
'—'. Data: every table cell is escaped as text unless its column holds Markdown we wrote.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

MISSING = "—"


def missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a figure that was not measured."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))


def number(value: Any, fmt: str = ".2f", empty: str = MISSING) -> str:
    """A figure in `fmt`, or `empty` where it is missing."""
    return empty if missing(value) else format(value, fmt)


def times(value: float) -> str:
    """'5.20×': a ratio in sentences and tables."""
    return f"{value:.2f}×"


def interval(value: Any, low: Any, high: Any, fmt: str = ".2f") -> str:
    """'16.1 [16.0–16.2]': a figure and its interval; the figure alone where the interval is
    missing, '—' where the figure is."""
    if missing(value):
        return MISSING
    if missing(low) or missing(high):
        return f"{value:{fmt}}"
    return f"{value:{fmt}} [{low:{fmt}}–{high:{fmt}}]"


def confidence_interval(low: float, high: float, confidence: float) -> str:
    """'95% CI 4.90–5.50': an interval in a sentence."""
    return f"{confidence:.0%} CI {low:.2f}–{high:.2f}"


def short_ratio(value: float) -> str:
    """A ratio in little room (heatmap labels): '84×', '5.2×', '0.24×'."""
    if not math.isfinite(value):
        return ""
    if value >= 9.95:
        return f"{value:.0f}×"
    if value >= 1:
        return f"{value:.1f}×"
    return f"{value:.2f}×"


def format_ratio(value: float, low: float, high: float) -> str:
    """'5.20× [4.90–5.50]' — the form used in every table and sentence of the report."""
    return f"{times(value)} [{low:.2f}–{high:.2f}]"


# Characters that would turn text into markup: code, emphasis, links and images, raw HTML,
# entities, table cells; `_` only where it could open or close emphasis (not inside mobilenet_v2).
_MARKUP = re.compile(r"([\\`*\[\]<>|&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def escape_markdown(value: Any) -> str:
    """Data as Markdown text: shown as written, never as a link, an image, code or HTML (error
    texts and names can come from another machine's bundle). One line: a newline would end a
    table row or a list item."""
    return _MARKUP.sub(r"\\\1", " ".join(str(value).split("\n")))


def markdown_table(frame: pd.DataFrame, markup: Iterable[str] = ()) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency). Every cell is data and
    escaped, except in the `markup` columns, which hold Markdown we wrote ourselves."""
    if frame.empty:
        return "_(none)_\n"
    ours = set(markup)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    escape = [(lambda v: str(v).replace("|", "\\|").replace("\n", " ")) if column in ours else escape_markdown
              for column in frame.columns]
    body = [
        "| " + " | ".join("" if pd.isna(v) else text(v) for text, v in zip(escape, row)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body]) + "\n"


def format_speedup(row) -> str:
    """'5.20× [4.90–5.50]', with ' n.s.' when the interval includes 1 and ' †' when a cell of
    the pair is host-bound (issue 14)."""
    text = format_ratio(row.speedup, row.ci_low, row.ci_high)
    text = text if row.significant else text + " n.s."
    return text + " †" if getattr(row, "host_bound", False) is True else text

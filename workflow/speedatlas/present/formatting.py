"""How figures and data are written for people: one home for every number format and for
Markdown tables, used by the report, its sections and the plots.

Figures with an interval carry the digits their interval supports, no more (issue 23): the
interval's width gets two significant digits and the figure as many decimals as its bounds, so
a host-bound speed-up reads '39× [5–258]' and a steady one '193.4× [191.3–196.8]' or
'5.20× [4.90–5.50]' (figures(), the one rule). A speed-up cell adds ' n.s.' when its interval
includes 1 and ' †' when a cell of the pair is host-bound; a missing value is '—'. Data: every
table cell is escaped as text unless its column holds Markdown we wrote.
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


# Decimals of a figure without an interval of its own (a median over cells, a share).
PLAIN_DECIMALS = 2


def decimals(low: float, high: float, significant: int = 2) -> int:
    """Decimals that show an interval's width with `significant` digits: 0 for [5.00–257.83],
    1 for [191.3–196.8], 2 for [4.90–5.50] (between 0 and 6; 2 where the width says nothing)."""
    width = abs(high - low)
    if not math.isfinite(width) or width == 0:
        return PLAIN_DECIMALS
    return min(6, max(0, significant - 1 - math.floor(math.log10(width))))


def figures(value: float, low: float, high: float) -> tuple[str, str, str]:
    """A figure and its interval's bounds, each with the decimals the interval supports; a bound
    below 1 keeps its first significant digit, so an interval that reaches below 1 (a ratio: the
    candidate may be slower) never reads as reaching 1."""
    places = decimals(low, high)
    if 0 < abs(low) < 1 and math.isfinite(low):
        places = min(6, max(places, -math.floor(math.log10(abs(low)))))
    return f"{value:.{places}f}", f"{low:.{places}f}", f"{high:.{places}f}"


def word_list(items: Iterable[Any], last: str = "and") -> str:
    """'cuda and mps', 'a, b or c': names in a sentence."""
    words = [str(item) for item in items]
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def count(n: int, noun: str) -> str:
    """'1 cell', '16 cells'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def times(value: float) -> str:
    """'5.20×': a ratio in sentences and tables."""
    return f"{value:.2f}×"


def interval(value: Any, low: Any, high: Any, fmt: str = ".2f") -> str:
    """'16.1 [16.0–16.2]': a figure and its interval, with the digits the interval supports; the
    figure alone (in `fmt`) where the interval is missing, '—' where the figure is."""
    if missing(value):
        return MISSING
    if missing(low) or missing(high):
        return f"{value:{fmt}}"
    shown, lo, hi = figures(value, low, high)
    return f"{shown} [{lo}–{hi}]"


def confidence_interval(low: float, high: float, confidence: float) -> str:
    """'95% CI 4.90–5.50': an interval in a sentence, with the digits its width supports."""
    _, lo, hi = figures(low, low, high)
    return f"{confidence:.0%} CI {lo}–{hi}"


def ratio_in_sentence(value: float, low: float, high: float) -> str:
    """'5.20×' with the digits its interval supports (the interval follows in the sentence)."""
    return f"{figures(value, low, high)[0]}×"


def format_ratio(value: float, low: float, high: float) -> str:
    """'5.20× [4.90–5.50]' — the form used in every table of the report (figures(): digits)."""
    shown, lo, hi = figures(value, low, high)
    return f"{shown}× [{lo}–{hi}]"


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

"""Terminal rendering of schemas and profiles with rich (reads results, computes nothing)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from datakiln.cli._common import esc
from datakiln.dataset.profile import ColumnProfile, Profile

_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[float]) -> str:
    """A one-line histogram, e.g. ``'▁▃▇█▅▂'``."""
    top = max(counts) if counts else 0
    if top <= 0:
        return ""
    return "".join(_BARS[max(1, math.ceil(c / top * 8))] if c > 0 else _BARS[0] for c in counts)


def _short(value: Any, width: int = 22) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return esc(text if len(text) <= width else text[: width - 1] + "…")


def _shape(column: ColumnProfile) -> str:
    if column.histogram:
        return sparkline(column.histogram["counts"])
    if column.top_values:
        shown = ", ".join(f"{_short(v, 14)} ({c:,})" for v, c in column.top_values[:3])
        return shown + (" …" if column.distinct > 3 else "")
    return ""


def profile_table(profile: Profile, title: str) -> Table:
    """One row per column: kind, type, missing, distinct, range, and a picture of its shape."""
    table = Table(title=esc(title), title_justify="left", header_style="bold")
    for name, justify in (("column", "left"), ("kind", "left"), ("type", "left"),
                          ("missing", "right"), ("distinct", "right"), ("min", "right"),
                          ("median", "right"), ("max", "right"), ("shape / top values", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "shape / top values")
    for column in profile.columns:
        kind = esc(column.kind + (f" ({column.pii})" if column.pii else ""))
        missing = f"{column.nulls:,}" + (f" ({column.null_share:.1%})" if column.nulls else "")
        odd = [f"{count:,} {label}" for count, label in ((column.nans, "NaN"), (column.pos_inf, "+inf"),
                                                        (column.neg_inf, "-inf")) if count]
        missing += ("; " + ", ".join(odd)) if odd else ""  # non-finite values, counted apart
        distinct = "" if column.distinct is None else (
            f"{column.distinct:,}" + ("" if column.distinct_exact else "~"))
        numeric = bool(column.quantiles)
        table.add_row(esc(column.name), kind, esc(column.type), missing, distinct,
                      _short(column.min) if numeric else "", _short(column.quantiles.get("0.5")),
                      _short(column.max) if numeric else "", _shape(column))
    return table

"""Small inline SVG plots for the HTML report: overlaid distributions, a heatmap, histograms.

Plain SVG strings (no plotting library, nothing fetched): they render in any browser and
keep the report one self-contained file. Real data is drawn in blue, synthetic in orange.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence

__all__ = ["bars", "distribution", "heatmap", "histogram"]

REAL = "#2f6db3"
SYNTH = "#e0812f"
HOLDOUT = "#6a9f3b"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _number(value: float, datetime_ticks: str | None = None) -> str:
    if datetime_ticks:
        seconds = value / {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9, "D": 1 / 86400}.get(datetime_ticks, 1e6)
        try:
            return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d")
        except OverflowError:
            return f"{value:.3g}"
    magnitude = abs(value)
    if magnitude and (magnitude >= 1e6 or magnitude < 1e-3):
        return f"{value:.2e}"
    return f"{value:,.4g}"


def histogram(edges: Sequence[float], series: dict[str, Sequence[float]], *, width: int = 320,
              height: int = 150, datetime_ticks: str | None = None, x_label: str = "") -> str:
    """Overlaid step histograms (shares per bin) of several series on shared ``edges``."""
    colors = {"real": REAL, "synthetic": SYNTH, "holdout": HOLDOUT}
    left, bottom, top = 34, 22, 8
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max((max(v) for v in series.values() if len(v)), default=1.0) or 1.0
    bins = len(edges) - 1
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{_esc(x_label or "histogram")}">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    for name, shares in series.items():
        points = []
        for i, share in enumerate(shares):
            x0 = left + plot_w * i / bins
            x1 = left + plot_w * (i + 1) / bins
            y = top + plot_h * (1 - share / peak)
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        path = f"{left},{top + plot_h} " + " ".join(points) + f" {left + plot_w},{top + plot_h}"
        color = colors.get(name, "#555")
        fill = "0" if name == "synthetic" else "0.3"  # synthetic as an outline over the real area
        parts.append(f'<polygon points="{path}" fill="{color}" fill-opacity="{fill}" stroke="{color}" '
                     f'stroke-width="1.6"><title>{_esc(name)}</title></polygon>')
    parts.append(f'<text x="{left}" y="{height - 6}" class="tick">{_esc(_number(edges[0], datetime_ticks))}'
                 f'</text><text x="{left + plot_w}" y="{height - 6}" class="tick" text-anchor="end">'
                 f'{_esc(_number(edges[-1], datetime_ticks))}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" class="tick" text-anchor="end">{peak:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(labels: Sequence[str], series: dict[str, Sequence[float]], *, width: int = 320) -> str:
    """Horizontal paired bars (real above synthetic) of category shares."""
    colors = {"real": REAL, "synthetic": SYNTH}
    row_h, label_w = 16, 110
    height = row_h * len(labels) + 8
    peak = max((max(v) for v in series.values() if len(v)), default=1.0) or 1.0
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="category shares">']
    for i, label in enumerate(labels):
        y = 4 + i * row_h
        short = label if len(label) <= 16 else label[:15] + "…"
        parts.append(f'<text x="{label_w - 4}" y="{y + 11}" class="tick" text-anchor="end">'
                     f'<title>{_esc(label)}</title>{_esc(short)}</text>')
        for j, (name, shares) in enumerate(series.items()):
            w = (width - label_w - 40) * shares[i] / peak
            parts.append(f'<rect x="{label_w}" y="{y + 1 + j * 6.5:.1f}" width="{max(w, 0.5):.1f}" height="6" '
                         f'fill="{colors.get(name, "#555")}"><title>{_esc(name)} {_esc(label)}: '
                         f'{shares[i]:.1%}</title></rect>')
        parts.append(f'<text x="{width - 2}" y="{y + 11}" class="tick" text-anchor="end">'
                     f'{series["real"][i]:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def distribution(record: dict, datetime_ticks: str | None = None) -> str:
    """The plot of one column record from the fidelity section."""
    data = record.get("distribution") or {}
    if data.get("type") == "histogram":
        return histogram(data["edges"], {"real": data["real"], "synthetic": data["synthetic"]},
                         datetime_ticks=datetime_ticks, x_label=record["column"])
    if data.get("type") == "bars":
        return bars(data["labels"], {"real": data["real"], "synthetic": data["synthetic"]})
    return ""


def _heat_color(value: float | None) -> str:
    """White (0) to red (≥ 0.5) for a difference; grey when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "#e6e6e6"
    t = min(1.0, abs(value) / 0.5)
    return f"rgb(255,{int(255 - 180 * t)},{int(255 - 200 * t)})"


def heatmap(names: Sequence[str], cells: dict[tuple[str, str], float | None], *, cell: int = 22) -> str:
    """A symmetric heatmap of ``cells[(a, b)]`` (e.g. 1 − pair score), names on both axes."""
    label_w = 118
    size = label_w + cell * len(names) + 4
    parts = [f'<svg class="plot" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
             f'aria-label="column-pair difference heatmap">']
    for i, name in enumerate(names):
        short = name if len(name) <= 17 else name[:16] + "…"
        parts.append(f'<text x="{label_w - 4}" y="{label_w + i * cell + cell * 0.7:.1f}" class="tick" '
                     f'text-anchor="end">{_esc(short)}</text>')
        x = label_w + i * cell + cell * 0.7
        parts.append(f'<text x="{x:.1f}" y="{label_w - 4}" class="tick" transform="rotate(-60 {x:.1f} '
                     f'{label_w - 4})">{_esc(short)}</text>')
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            value = 0.0 if a == b else cells.get((a, b), cells.get((b, a)))
            text = "—" if value is None else f"{value:.3f}"
            parts.append(f'<rect x="{label_w + j * cell}" y="{label_w + i * cell}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="{_heat_color(value)}"><title>{_esc(a)} × {_esc(b)}: '
                         f'{text}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)

"""Render an :class:`~datakiln.evaluation.images.ImageEvaluationReport` as one self-contained
HTML page: the measures with their intervals beside the real-holdout reference, grids of
real and generated images per class, and near-copy pairs (generated | nearest training
image). Computes nothing: numbers and pixels come from the report."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from datakiln.io._output import generator_meta
from datakiln.report.html import _CSS
from datakiln.report.images import html_figure, image_grid

__all__ = ["render_image_report"]


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else html.escape(str(value))


def _iv(interval: Any, percent: bool = False) -> str:
    if not interval:
        return ""
    low, high = interval
    return f"{low:.1%} – {high:.1%}" if percent else f"{_f(low)} – {_f(high)}"


def _measures(m: dict[str, Any]) -> str:
    pr, prh = m["precision_recall"], m["precision_recall_holdout"]
    fid, acc = m["class_fidelity"], m["classifier_holdout_accuracy"]
    rows = [
        (
            "Fréchet distance (features) ↓",
            _f(m["frechet_distance"]["value"]),
            _iv(m["frechet_distance"]["interval"]),
            _f(m["frechet_distance_holdout"]["value"]),
        ),
        ("KID ↓", _f(m["kid"]["value"]), _iv(m["kid"]["interval"]), _f(m["kid_holdout"]["value"])),
        ("precision ↑", f"{pr['precision']:.1%}", "", f"{prh['precision']:.1%}"),
        ("recall ↑", f"{pr['recall']:.1%}", "", f"{prh['recall']:.1%}"),
        (
            "class fidelity ↑",
            f"{fid['accuracy']:.1%}",
            _iv(fid["interval"], True),
            f"{acc['value']:.1%} (chance {fid['chance']:.0%})",
        ),
    ]
    for space, mem in m["memorisation"].items():
        rows.append(
            (
                f"closer to a training image than the holdout's 5th percentile ({space}) ↓",
                f"{mem['share_below']:.1%}",
                _iv(mem["interval"], True),
                "5% by construction",
            )
        )
        rows.append(
            (
                f"… and much nearer one training image than the next ({space})",
                f"{mem['share_below_and_singular']:.1%}",
                "",
                "copies, not blurry averages",
            )
        )
    body = "".join(
        f"<tr><td>{html.escape(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>" for a, b, c, d in rows
    )
    return (
        "<table><thead><tr><th>measure</th><th>generated</th><th>95% interval</th>"
        f"<th>real holdout (reference)</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _per_class_table(fid: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{r['accuracy']:.1%}</td><td>{_iv(r['interval'], True)}</td>"
        f"<td>{r['n']:,}</td></tr>"
        for name, r in fid["per_class"].items()
    )
    return (
        "<table><thead><tr><th>class</th><th>class fidelity</th><th>95% interval</th><th>images</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _grids(figures: dict[str, Any]) -> str:
    parts = []
    for name, real in figures.get("real", {}).items():
        generated = figures.get("generated", {}).get(name)
        panel = html_figure(image_grid(real, columns=8), caption=f"{name}: real", max_width=420)
        if generated is not None and len(generated):
            panel += html_figure(
                image_grid(generated, columns=8), caption=f"{name}: generated", max_width=420
            )
        parts.append(f"<div class='panel'><h3>{html.escape(name)}</h3>{panel}</div>")
    return "<div class='grid'>" + "".join(parts) + "</div>"


def _copies(figures: dict[str, Any], m: dict[str, Any]) -> str:
    parts = []
    for space, pairs in figures.get("near_copies", {}).items():
        mem = m["memorisation"][space]
        if not pairs:
            parts.append(
                f"<div class='ok'>{space} space: no generated image is closer to a training image than "
                f"the holdout's 5th percentile ({mem['threshold']:.4g}).</div>"
            )
            continue
        images = [image for pair in pairs for image in pair]
        labels = [
            text for c in mem["near_copies"][: len(pairs)] for text in (f"gen d={c['distance']:.3g}", "train")
        ]
        parts.append(
            f"<div class='flag'>{space} space: {mem['flagged']:,} generated images "
            f"({mem['share_below']:.1%}) are closer to a training image than the holdout's 5th percentile "
            f"({mem['threshold']:.4g}); the closest pairs (generated, nearest training image):</div>"
            + html_figure(image_grid(images, labels=labels, columns=8), caption=f"near copies, {space}")
        )
    return "".join(parts)


def render_image_report(report: Any, *, title: str = "datakiln image evaluation") -> str:
    """The whole HTML document for an image evaluation report."""
    m, info = report.measures, report.info
    subtitle = (
        f"{info['train_images']:,} real training images · {info['synthetic_images']:,} generated · "
        f"{info['holdout_images']:,} holdout ({info['holdout']}) · {'×'.join(map(str, info['image']))} · "
        f"seed {info['seed']} · {info['seconds']:.1f} s"
    )
    body = (
        f"<h1>{html.escape(title)}</h1><p class='muted'>{html.escape(subtitle)}</p>"
        f"<div class='note'>{html.escape(info['note'])}</div>"
        "<h2>Measures</h2>"
        + _measures(m)
        + "<h2>Class fidelity per class</h2>"
        + _per_class_table(m["class_fidelity"])
        + "<h2>Real and generated images per class</h2>"
        + _grids(report.figures)
        + "<h2>Memorisation</h2>"
        + _copies(report.figures, m)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        + generator_meta()
        + f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>"
    )

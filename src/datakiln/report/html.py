"""Render an evaluation report (plain data, see :class:`datakiln.evaluation.EvaluationReport`)
as one self-contained HTML file: inline CSS, inline SVG plots, a few lines of inline
JavaScript to sort tables; nothing is fetched from the network. This module computes
nothing: every number comes from the report data.
"""

from __future__ import annotations

import html
import re
from typing import Any

from datakiln.io._output import generator_meta
from datakiln.report import plots

__all__ = ["render_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}
.card{background:#fff;border-radius:10px;padding:12px 16px;min-width:150px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .v{font-size:26px;font-weight:650}.card .k{color:#555;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.good{color:#1f7a3a}.fair{color:#a66500}.poor{color:#b3261e}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 3px rgba(0,0,0,.06)}
th,td{padding:5px 9px;border-bottom:1px solid #eee;text-align:right}th{background:#eef1f5;cursor:pointer;user-select:none}
td:first-child,th:first-child{text-align:left}th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.panel{background:#fff;border-radius:10px;padding:10px 12px;box-shadow:0 1px 3px rgba(0,0,0,.06)}
.panel h3{font-size:14px;margin:0 0 4px;display:flex;justify-content:space-between}
.tick{font-size:10px;fill:#555}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px -2px 10px}
.flag{background:#fdecea;border-left:4px solid #b3261e;padding:8px 12px;margin:8px 0}
.ok{background:#e8f5ec;border-left:4px solid #1f7a3a;padding:8px 12px;margin:8px 0}
.note{background:#fff8e5;border-left:4px solid #a66500;padding:8px 12px;margin:8px 0}
.small{font-size:12px;margin:4px 0 0}
"""

_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, index) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[index].dataset.v || a.cells[index].textContent;
        var y = b.cells[index].dataset.v || b.cells[index].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 3, percent: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1%}" if percent else f"{value:.{digits}f}"
    return _esc(value)


def _grade(value: float | None, good: float, fair: float, higher_is_better: bool = True) -> str:
    if value is None:
        return ""
    score = value if higher_is_better else -value
    good, fair = (good, fair) if higher_is_better else (-good, -fair)
    return "good" if score >= good else "fair" if score >= fair else "poor"


def _card(label: str, value: Any, css: str = "", note: str = "") -> str:
    return (f'<div class="card"><div class="k">{_esc(label)}</div><div class="v {css}">{value}</div>'
            f'<div class="muted">{_esc(note)}</div></div>')


def _cell(value: Any, percent: bool = False) -> str:
    sort_value = "" if value is None else f' data-v="{value}"' if isinstance(value, (int, float)) else ""
    return f"<td{sort_value}>{_fmt(value, percent=percent)}</td>"


def _interval(values: list[float] | None, percent: bool = False) -> str:
    if not values:
        return ""
    low, high = values
    return f' <span class="muted">[{_fmt(low, percent=percent)}, {_fmt(high, percent=percent)}]</span>'


def _datetime_unit(type_name: str | None) -> str | None:
    if not type_name:
        return None
    if type_name.startswith("date32"):
        return "D"
    if type_name.startswith("date64"):
        return "ms"
    match = re.match(r"timestamp\[(\w+)", type_name)
    return match.group(1) if match else None


def _cards(report: dict[str, Any]) -> str:
    fidelity, utility, privacy = report["fidelity"], report.get("utility"), report.get("privacy")
    cards = [_card("Fidelity", _fmt(fidelity.get("score")), _grade(fidelity.get("score"), 0.85, 0.7),
                   "mean of shapes and pair trends"),
             _card("Column shapes", _fmt(fidelity.get("column_shapes")),
                   _grade(fidelity.get("column_shapes"), 0.9, 0.75), "KS / TV complement"),
             _card("Pair trends", _fmt(fidelity.get("column_pair_trends")),
                   _grade(fidelity.get("column_pair_trends"), 0.85, 0.7), "correlation / contingency")]
    if _has_non_finite(fidelity) and fidelity.get("non_finite_values") is not None:
        cards.append(_card("NaN / ±inf", _fmt(fidelity["non_finite_values"]),
                           _grade(fidelity["non_finite_values"], 0.95, 0.85), "share similarity"))
    if fidelity.get("detection_auc") is not None:
        cards.append(_card("Detection AUC", _fmt(fidelity["detection_auc"]),
                           _grade(fidelity["detection_auc"], 0.6, 0.75, higher_is_better=False),
                           "0.5 = indistinguishable"
                           + (f" · score 2(1−AUC) {_fmt(fidelity['detection_score'])}"
                              if fidelity.get("detection_score") is not None else "")
                           + (f" · measured {_fmt(fidelity['detection_auc_measured'])}: "
                              + (fidelity.get("detection_note") or "below chance")
                              if fidelity.get("detection_note") else "")))
    if utility:
        metric = utility["headline_metric"]
        real, synth = (utility.get("real") or {}).get(metric), (utility.get("synthetic") or {}).get(metric)
        ratio = utility.get("synthetic_to_real_ratio")
        cards.append(_card(f"Utility ({metric})", f"{_fmt(synth)} <span class='muted'>/ {_fmt(real)}</span>",
                           _grade(ratio, 0.95, 0.85), "trained on synthetic / on real"))
        fair = {m: (utility.get(m) or {}).get("fairness") or {} for m in ("synthetic", "real")}
        for key, label in (("demographic_parity_difference", "Parity difference"),
                           ("equalized_odds_difference", "Equalized-odds difference")):
            if fair["synthetic"].get(key) is not None:
                cards.append(_card(label, f"{_fmt(fair['synthetic'][key])} <span class='muted'>/ "
                                          f"{_fmt(fair['real'].get(key))}</span>",
                                   _grade(fair["synthetic"][key], 0.1, 0.2, higher_is_better=False),
                                   "across the sensitive column; trained on synthetic / on real"))
    if privacy:
        flagged = privacy.get("flagged")
        cards.append(_card("Privacy", "flagged" if flagged else "no flag", "poor" if flagged else "good",
                           f"exact copies {_fmt(privacy.get('exact_copy_rate'), percent=True)}"))
    return '<div class="cards">' + "".join(cards) + "</div>"


_SPECIAL = ("NaN", "+inf", "-inf")


def _has_non_finite(fidelity: dict[str, Any]) -> bool:
    """Whether any column holds NaN or ±inf on either side."""
    return any(share for c in fidelity["columns"] for side in ("non_finite_real", "non_finite_synthetic")
               for share in (c.get(side) or {}).values())


def _non_finite_cell(shares: dict[str, float] | None) -> str:
    """'NaN 4.0% · +inf 19.0%' (the classes present; 0 when none), sorted by their total."""
    if shares is None:
        return "<td>—</td>"
    present = [f"{name} {shares[name]:.1%}" for name in _SPECIAL if shares.get(name)]
    total = sum(shares.get(name) or 0.0 for name in _SPECIAL)
    return f'<td data-v="{total}">{_esc(" · ".join(present) or "0")}</td>'


def _note(text: str | None) -> str:
    return f'<p class="muted small">{_esc(text)}</p>' if text else ""


def _columns_section(fidelity: dict[str, Any]) -> str:
    non_finite = _has_non_finite(fidelity)
    rows = []
    for c in fidelity["columns"]:
        extra = (_non_finite_cell(c.get("non_finite_real")) + _non_finite_cell(c.get("non_finite_synthetic"))
                 + _cell(c.get("non_finite_similarity")) if non_finite else "")
        rows.append(f"<tr><td>{_esc(c['column'])}</td><td>{_esc(c['role'])}</td><td>{_esc(c['metric'])}</td>"
                    f"{_cell(c['score'])}{_cell(c['missing_real'], True)}{_cell(c['missing_synthetic'], True)}"
                    f"{extra}{_cell(c['coverage'])}</tr>")
    extra_heads = ("<th>NaN / ±inf (real)</th><th>NaN / ±inf (synthetic)</th><th>NaN / ±inf similarity</th>"
                   if non_finite else "")
    table = ('<table class="sortable" id="columns"><thead><tr><th>column</th><th>role</th><th>metric</th>'
             f"<th>shape score</th><th>missing (real)</th><th>missing (synthetic)</th>{extra_heads}"
             "<th>coverage</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    notes = "".join(f"<li><b>{_esc(c['column'])}</b>: {_esc(c['note'])}</li>"
                    for c in fidelity["columns"] if c.get("note"))
    notes = f'<ul class="muted small" id="column-notes">{notes}</ul>' if notes else ""
    panels = []
    for c in fidelity["columns"]:
        plot = plots.distribution(c, _datetime_unit(c.get("type")))
        panels.append(f'<div class="panel"><h3><span>{_esc(c["column"])}</span>'
                      f'<span class="{_grade(c["score"], 0.9, 0.75)}">{_fmt(c["score"])}</span></h3>{plot}'
                      f'{_note(c.get("note"))}</div>')
    legend = (f'<p class="legend"><span style="background:{plots.REAL}"></span>real'
              f'<span style="background:{plots.SYNTH}"></span>synthetic</p>')
    overall = [f"missing-value similarity {_fmt(fidelity.get('missing_values'))}"]
    if fidelity.get("non_finite_values") is not None:
        overall.append(f"NaN / ±inf similarity {_fmt(fidelity['non_finite_values'])}")
    explain = (" NaN / ±inf: shares of all rows (finite values alone enter the shape score); their "
               "similarity is the TV complement over NaN, +inf, −inf and the rest." if non_finite else "")
    return ("<h2>Columns</h2><p class='muted'>Shape score: KS complement (continuous) or TV complement "
            "(categories), SDMetrics' definitions; 1 is a perfect match. Click a header to sort."
            f"{explain}</p><p class='muted' id='overall-shares'>{_esc('; '.join(overall))}</p>"
            + table + notes + "<h2>Distributions</h2>" + legend + '<div class="grid">' + "".join(panels)
            + "</div>")


def _pairs_section(fidelity: dict[str, Any]) -> str:
    names = [c["column"] for c in fidelity["columns"]]
    cells = {tuple(p["columns"]): (None if p["score"] is None else 1 - p["score"]) for p in fidelity["pairs"]}
    worst = sorted((p for p in fidelity["pairs"] if p["score"] is not None), key=lambda p: p["score"])[:15]
    rows = "".join(f"<tr><td>{_esc(' × '.join(p['columns']))}</td><td>{_esc(p['metric'])}</td>"
                   f"{_cell(p['score'])}{_cell(p['real'])}{_cell(p['synthetic'])}</tr>" for p in worst)
    table = ('<table class="sortable" id="pairs"><thead><tr><th>pair</th><th>metric</th><th>score</th>'
             "<th>real association</th><th>synthetic association</th></tr></thead><tbody>" + rows
             + "</tbody></table>")
    return ("<h2>Column pairs</h2><p class='muted'>Each cell is 1 − the pair's trend score (white: "
            "same relationship as the real data; red: ≥ 0.5 apart). Association: Pearson r for two "
            "continuous columns, Cramér's V otherwise.</p><div class='grid'><div class='panel'>"
            + plots.heatmap(names, cells) + "</div><div><h3>Least faithful pairs</h3>" + table
            + "</div></div>")


def _utility_section(utility: dict[str, Any] | None) -> str:
    if not utility:
        return ("<h2>ML utility</h2><p class='muted'>Not computed: pass <code>target=</code> "
                "(<code>--target</code>) to train and test models.</p>")
    metrics = (["accuracy", "macro_f1", "minority_f1", "roc_auc"] if utility["task"] == "classification"
               else ["r2", "mae"])
    header = "".join(f"<th>{m}</th>" for m in metrics)
    rows, errors = [], []
    for name in ("real", "synthetic", "augmented"):
        model = utility.get(name) or {}
        if model.get("error"):
            errors.append(f"train on {name}: {model['error']}")
        cells = "".join(f"<td data-v='{model.get(m)}'>{_fmt(model.get(m))}{_interval(model.get(m + '_interval'))}"
                        f"</td>" for m in metrics)
        rows.append(f"<tr><td>train on {name}</td><td>{model.get('trained_rows', '—')}</td>{cells}</tr>")
    return (f"<h2>ML utility</h2><p class='muted'>{_esc(utility['model'])} predicting "
            f"<b>{_esc(utility['target'])}</b> ({_esc(utility['task'])}), tested on {_esc(utility['holdout'])} "
            f"({utility['test_rows']} rows); minority class: {_esc(utility.get('minority_class'))}. "
            "Brackets: 95% bootstrap intervals.</p>"
            f'<table class="sortable" id="utility"><thead><tr><th>model</th><th>rows</th>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            + "".join(_note(e) for e in errors)
            + (f'<div class="note" id="utility-note">{_esc(utility["note"])}</div>' if utility.get("note") else "")
            + f"<p>Synthetic / real {utility['headline_metric']}: {_fmt(utility.get('synthetic_to_real_ratio'))}; "
            f"gain from augmenting: {_fmt(utility.get('augmentation_gain'))}.</p>")


def _privacy_section(privacy: dict[str, Any] | None) -> str:
    if not privacy:
        return ""
    flags = "".join(f'<div class="flag">{_esc(f)}</div>' for f in privacy["flags"]) or \
        '<div class="ok">No privacy heuristic raised a flag.</div>'
    shared, distance = privacy.get("exact_copy_columns"), privacy.get("distance_columns")
    left_out = [c for c in shared or [] if distance is not None and c not in distance]
    copy_scope = f" (equal in all {len(shared)} shared columns)" if shared else ""
    distance_scope = f" (compared columns; {', '.join(left_out)} left out)" if left_out else ""
    facts = [(f"exact copies of training rows{copy_scope}", _fmt(privacy.get("exact_copy_rate"), percent=True)
              + _interval(privacy.get("exact_copy_interval"), percent=True)),
             ("holdout rows that equal a training row", _fmt(privacy.get("holdout_exact_copy_rate"), percent=True)),
             (f"share of synthetic rows closer than the median holdout row{distance_scope}",
              _fmt(privacy.get("dcr_share_closer_than_holdout"), percent=True)
              + _interval(privacy.get("dcr_share_interval"), percent=True)),
             ("median distance to closest record: synthetic / holdout",
              f"{_fmt(privacy.get('dcr_synthetic_median'))} / {_fmt(privacy.get('dcr_holdout_median'))}"),
             ("median nearest-neighbour distance ratio: synthetic / holdout",
              f"{_fmt(privacy.get('nndr_synthetic_median'))} / {_fmt(privacy.get('nndr_holdout_median'))}"),
             ("membership-inference AUC (0.5: no signal)", _fmt(privacy.get("membership_auc"))
              + _interval(privacy.get("membership_interval")))]
    if privacy.get("training_rows") is not None:
        tiny = (' <span class="poor">(tiny: a synthesizer replays so few rows)</span>'
                if privacy.get("small_training") else "")
        facts.append(("training rows", f"{privacy['training_rows']:,}{tiny}"))
    table = ('<table id="privacy"><tbody>' + "".join(f"<tr><td>{_esc(k)}</td><td>{v}</td></tr>" for k, v in facts)
             + "</tbody></table>")
    hist = privacy.get("dcr_histogram") or {}
    series = {k: v for k, v in hist.items() if k != "edges"}
    plot = plots.histogram(hist["edges"], series, x_label="distance to closest training row") if series else ""
    legend = (f'<p class="legend"><span style="background:{plots.SYNTH}"></span>synthetic → train'
              + (f'<span style="background:{plots.HOLDOUT}"></span>holdout → train' if "holdout" in series
                 else "") + "</p>")
    return ("<h2>Privacy risk</h2>" + flags + f'<div class="note">{_esc(privacy["notice"])}</div>'
            + '<div class="grid"><div>' + table + '</div><div class="panel"><h3>Distance to closest '
            "training record</h3>" + plot + legend + "</div></div>" + _text_copies(privacy.get("text_copies")))


def _flag(found: dict[str, Any]) -> bool:
    return bool(found.get("flagged") or found.get("ngram8_flagged"))


def _text_copies(found: dict[str, dict[str, Any]] | None) -> str:
    """The verbatim-copy table per free-text, identifier or PII column (nothing without one)."""
    if not found:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(name)}</td><td>{_esc(c.get('kind', 'text'))}</td>{_cell(c.get('values'))}{_cell(c.get('copies'))}"
        f"{_cell(c.get('share'), True)}{_cell(c.get('holdout_share'), True)}"
        f"{_cell(c.get('ngram8_share'), True)}{_cell(c.get('ngram8_holdout_share'), True)}"
        f"<td class=\"{'poor' if _flag(c) else 'good'}\">{'flagged' if _flag(c) else 'no flag'}"
        f"</td></tr>" for name, c in found.items())
    return ("<h3>Free-text, identifier and PII columns</h3><p class='muted'>Synthetic non-null values "
            "equal to a training value of the same column verbatim (a holdout's share is the "
            "baseline: real values repeat too); flagged above 1% and twice the baseline. Text columns "
            "also show the share of synthetic word 8-grams found in the training text beside the "
            "holdout's share (flagged 5 points above it; needs a holdout).</p>"
            '<table class="sortable" id="text-copies"><thead><tr><th>column</th><th>kind</th><th>values checked</th>'
            "<th>verbatim copies</th><th>share</th><th>holdout share</th><th>8-gram share</th>"
            "<th>holdout 8-gram share</th><th>flag</th></tr></thead><tbody>"
            + rows + "</tbody></table>")


def render_report(report: dict[str, Any], *, title: str = "datakiln evaluation") -> str:
    """The whole HTML document for a report dict (``EvaluationReport.to_dict()``)."""
    info = report.get("info", {})
    subtitle = (f"{info.get('real_rows', '?'):,} real rows · {info.get('synthetic_rows', '?'):,} synthetic rows"
                + (f" · {info['holdout_rows']:,} holdout rows" if info.get("holdout_rows") else "")
                + f" · samples of {info.get('sample_rows', '?'):,} rows · seed {info.get('seed')}"
                + f" · {info.get('seconds', 0):.1f} s")
    skipped = info.get("skipped_columns") or {}
    skipped_note = (f"<p class='muted'>Not compared (identifiers, PII, text): "
                    f"{_esc(', '.join(skipped))}</p>" if skipped else "")
    body = (f"<h1>{_esc(title)}</h1><p class='muted'>{_esc(subtitle)}</p>{skipped_note}"
            + _cards(report) + _columns_section(report["fidelity"]) + _pairs_section(report["fidelity"])
            + _utility_section(report.get("utility")) + _privacy_section(report.get("privacy")))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            + generator_meta() +  # marks the file as datakiln's (replaced without --overwrite)
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>{body}</main>"
            f"<script>{_SORT_JS}</script></body></html>")

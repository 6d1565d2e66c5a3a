"""The HTML report renders what the evaluation computes: NaN/±inf shares, per-column notes,
free-text copies, the small-training flag and the utility note (9ae0d08's html left them out)."""

from __future__ import annotations

import html
import re

import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.report.html import render_report

ROWS = 40  # below MIN_TRAINING_ROWS (50): the privacy section flags a tiny training table


def _table(seed: int, inf_share: float) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=ROWS)
    x[: int(ROWS * inf_share)] = np.inf
    x[-2:] = np.nan
    return pa.table({"x": x, "empty": pa.nulls(ROWS, pa.float64()), "g": rng.choice(["a", "b"], ROWS),
                     "y": ["yes", "no"] * (ROWS // 2),
                     "note": [f"message {seed}-{i} about nothing much" for i in range(ROWS)]})


@pytest.fixture(scope="module")
def report() -> dict:
    real, synthetic = _table(0, 0.25), _table(1, 0.1)
    copied = real["note"].to_pylist()[:6] + synthetic["note"].to_pylist()[6:]  # 6 of 40 verbatim
    synthetic = synthetic.set_column(4, "note", pa.array(copied))
    return datakiln.evaluate(real, synthetic, target="y", detection=False,
                             metadata={"note": "text"}).to_dict()


@pytest.fixture(scope="module")
def page(report) -> str:
    return render_report(report)


def _text(page: str) -> str:
    """The page's visible text, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_report_data_holds_the_fields(report):
    """The fields the html must show exist with the expected values (guards the fixture)."""
    x = next(c for c in report["fidelity"]["columns"] if c["column"] == "x")
    assert x["non_finite_real"] == {"NaN": 0.05, "+inf": 0.25, "-inf": 0.0}
    assert x["non_finite_synthetic"] == {"NaN": 0.05, "+inf": 0.1, "-inf": 0.0}
    empty = next(c for c in report["fidelity"]["columns"] if c["column"] == "empty")
    assert empty["score"] is None and "every value is missing" in empty["note"]
    assert report["privacy"]["text_copies"]["note"]["copies"] == 6
    assert report["privacy"]["small_training"] and report["utility"]["note"]


def test_non_finite_shares_are_a_column_of_the_table(report, page):
    head = page[page.index('id="columns"'):page.index("</thead>", page.index('id="columns"'))]
    assert "NaN / ±inf (real)" in head and "NaN / ±inf (synthetic)" in head
    row = re.search(r"<tr><td>x</td>.*?</tr>", page).group(0)
    assert "NaN 5.0% · +inf 25.0%" in row and "NaN 5.0% · +inf 10.0%" in row
    x = next(c for c in report["fidelity"]["columns"] if c["column"] == "x")
    assert f"{x['non_finite_similarity']:.3f}" in row  # 1 - (0.15 + 0.15) / 2 = 0.850
    overall = report["fidelity"]["non_finite_values"]
    assert f"NaN / ±inf similarity {overall:.3f}" in _text(page)


def test_non_finite_column_is_hidden_when_no_column_has_them():
    clean = pa.table({"x": np.arange(30.0), "g": ["a", "b", "c"] * 10})
    page = render_report(datakiln.evaluate(clean, clean, detection=False, privacy=False).to_dict())
    assert "NaN / ±inf (real)" not in page and 'id="columns"' in page


def test_column_note_is_shown(report, page):
    empty = next(c for c in report["fidelity"]["columns"] if c["column"] == "empty")
    text = _text(page)
    assert f"empty : {empty['note']}" in text  # the notes list under the table
    assert text.count(empty["note"]) == 2  # and under the column's plot


def test_privacy_panel_has_text_copies_and_the_small_training_flag(report, page):
    table = page[page.index('id="text-copies"'):]
    table = table[:table.index("</table>")]
    row = re.search(r"<tr><td>note</td>.*?</tr>", table).group(0)
    assert "<td data-v=\"40\">40</td>" in row and "<td data-v=\"6\">6</td>" in row
    assert "15.0%" in row and "flagged" in row
    text = _text(page)
    assert "training rows 40 (tiny: a synthesizer replays so few rows)" in re.sub(r"\s+", " ", text)
    assert "only 40 rows (fewer than 50)" in text  # the flag itself


def test_utility_note_is_shown(report, page):
    note = report["utility"]["note"]
    assert f'<div class="note" id="utility-note">{html.escape(note)}</div>' in page


def test_exact_copy_scope_is_stated(page):
    text = re.sub(r"\s+", " ", _text(page))
    assert "exact copies of training rows (equal in all 5 shared columns)" in text


def test_a_below_chance_detection_shows_the_measured_auc_and_note():
    from datakiln.report.html import render_report

    report = datakiln.evaluate(pa.table({"x": list(range(300)), "c": ["a", "b", "c"] * 100}),
                               pa.table({"x": list(range(300)), "c": ["a", "b", "c"] * 100}),
                               privacy=False)
    fidelity = report.fidelity
    assert fidelity["detection_auc"] == 0.5 and fidelity["detection_auc_measured"] < 0.5
    html = render_report(report.to_dict())
    assert f"measured {fidelity['detection_auc_measured']:.3f}" in html
    assert fidelity["detection_note"][:40].replace("'", "&#x27;") in html

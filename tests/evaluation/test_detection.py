"""Detection AUC: a score of 0.5 means real and synthetic rows cannot be told apart."""

import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.report.html import render_report


def _table(rows: int, shift: float = 0.0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(shift, 1, rows), "y": rng.normal(0, 1, rows),
                     "c": rng.choice(["a", "b", "c"], rows)})


def test_a_copy_is_not_detectable_and_the_measured_auc_is_kept():
    real = _table(600)
    report = datakiln.evaluate(real, real, privacy=False, seed=0)
    fidelity = report.fidelity
    # every row has a twin with the opposite label: the classifier is reliably wrong
    assert fidelity["detection_auc_measured"] < 0.3
    assert fidelity["detection_auc"] == 0.5 and fidelity["detection_interval"] == [0.5, 0.5]
    assert "below chance" in fidelity["detection_note"]
    assert report.summary()["detection_auc"] == 0.5
    html = render_report(report.to_dict(), title="t")
    assert "Detection AUC" in html and ">0.500<" in html


def test_different_tables_are_detected_and_fresh_draws_are_not():
    real = _table(600)
    shifted = datakiln.evaluate(real, _table(600, shift=3.0, seed=1), privacy=False, seed=0).fidelity
    assert shifted["detection_auc"] > 0.9 and shifted["detection_auc"] == shifted["detection_auc_measured"]
    assert shifted["detection_note"] is None
    low, high = shifted["detection_interval"]
    assert 0.5 <= low <= shifted["detection_auc"] <= high <= 1.0
    fresh = datakiln.evaluate(real, _table(600, seed=2), privacy=False, seed=0).fidelity
    assert 0.5 <= fresh["detection_auc"] < 0.6
    assert fresh["detection_auc"] == pytest.approx(max(0.5, fresh["detection_auc_measured"]))

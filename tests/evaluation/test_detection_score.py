"""The pinned detector: 5 folds, up to 20,000 rows a side, SDMetrics' score 2 * (1 - AUC)."""

import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.dataset.dataset import as_dataset
from datakiln.evaluation._columns import RowEncoder, column_roles
from datakiln.evaluation.detection import detection_auc


def _table(rows: int, shift: float = 0.0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(shift, 1, rows), "c": rng.choice(["a", "b"], rows)})


def test_score_is_twice_one_minus_the_auc_with_its_interval():
    real = _table(600)
    for other, expect_high in ((_table(600, shift=1.0, seed=1), False), (_table(600, seed=2), True)):
        fidelity = datakiln.evaluate(real, other, privacy=False, seed=0).fidelity
        assert fidelity["detection_score"] == pytest.approx(2 * (1 - fidelity["detection_auc"]))
        low, high = fidelity["detection_score_interval"]
        assert low == pytest.approx(2 * (1 - fidelity["detection_interval"][1]))
        assert low <= fidelity["detection_score"] <= high
        assert (fidelity["detection_score"] > 0.8) == expect_high
    assert datakiln.evaluate(real, real, privacy=False).summary()["detection_score"] == 1.0


def test_detector_is_pinned_to_five_folds_on_at_most_20000_rows_a_side(monkeypatch):
    import datakiln.evaluation.suite as suite

    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return detection_auc(*args, **kwargs)

    monkeypatch.setattr(suite, "detection_auc", spy)
    datakiln.evaluate(_table(400), _table(400, seed=1), privacy=False, sample_rows=50_000)
    assert seen["rows"] == 20_000 and "folds" not in seen  # the default: 5 folds
    real, synthetic = _table(1_000), _table(800, shift=0.5, seed=3)
    roles = column_roles(as_dataset(real), [("synthetic", as_dataset(synthetic))], None)
    result = detection_auc(RowEncoder(roles, real), real, synthetic, rows=300, seed=0)
    assert result["folds"] == 5 and result["rows"] == 300
    assert 0.55 < result["auc"] < 0.85 and result["score"] == pytest.approx(2 * (1 - result["auc"]))

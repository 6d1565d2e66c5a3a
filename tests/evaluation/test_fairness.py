"""Group fairness: demographic-parity and equalized-odds differences against hand-computed values."""

import numpy as np
import pyarrow as pa
import pytest

import datakiln
from datakiln.errors import InvalidArgumentError
from datakiln.evaluation.fairness import group_fairness


def test_differences_match_hand_computed_rates():
    # A: truth 1100, predicted 1110 -> selection 3/4, TPR 2/2, FPR 1/2
    # B: truth 1000, predicted 1000 -> selection 1/4, TPR 1/1, FPR 0/3
    # C: truth 1110, predicted 0100 -> selection 1/4, TPR 1/3, FPR 0/1
    truth = [1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]
    predicted = [1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    groups = ["A"] * 4 + ["B"] * 4 + ["C"] * 4
    out = group_fairness(truth, predicted, groups, rng=np.random.default_rng(0))
    assert out["demographic_parity_difference"] == pytest.approx(0.75 - 0.25)
    assert out["equalized_odds_difference"] == pytest.approx(max(1 - 1 / 3, 0.5 - 0.0))
    assert out["groups"]["C"] == {"rows": 4, "selection_rate": 0.25,
                                  "true_positive_rate": pytest.approx(1 / 3), "false_positive_rate": 0.0}
    low, high = out["demographic_parity_difference_interval"]
    assert 0 <= low <= high <= 1


def test_a_group_without_positives_is_left_out_of_the_tpr_gap():
    truth = [0, 0, 1, 0]
    predicted = [1, 0, 1, 0]
    out = group_fairness(truth, predicted, ["a", "a", "b", "b"])
    assert out["groups"]["a"]["true_positive_rate"] is None
    # TPR defined for b only (no gap); FPR: a 1/2, b 0/1
    assert out["equalized_odds_difference"] == pytest.approx(0.5)
    assert out["demographic_parity_difference"] == pytest.approx(0.0)
    assert out["equalized_odds_difference_interval"] is None  # no rng: no interval
    single = group_fairness(truth, predicted, ["a"] * 4)
    assert single["demographic_parity_difference"] is None and single["equalized_odds_difference"] is None


def _table(rows: int, seed: int, label_is_sex: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], rows, p=[0.3, 0.7])
    x = rng.normal(0, 1, rows)
    label = (sex == "F") if label_is_sex else (x > 0.5)
    return pa.table({"x": x, "sex": sex, "label": np.where(label, "yes", "no")})


def test_evaluate_reports_the_tstr_models_fairness():
    real, holdout = _table(800, 0, True), _table(400, 1, True)
    # the label is the sex itself: the models decide "yes" exactly for F, so parity gap is 1
    # (selection 1 vs 0) while both groups' TPR and FPR are equal (1/1 and 0/0 are undefined
    # on one side each: F has no negatives, M no positives) -> no defined gap
    report = datakiln.evaluate(real, _table(800, 2, True), holdout=holdout, target="label",
                               sensitive="sex", privacy=False, detection=False)
    fair = report.utility["synthetic"]["fairness"]
    assert fair["demographic_parity_difference"] == pytest.approx(1.0)
    assert fair["groups"]["F"]["selection_rate"] == 1.0 and fair["groups"]["M"]["selection_rate"] == 0.0
    assert report.utility["real"]["fairness"]["demographic_parity_difference"] == pytest.approx(1.0)
    assert report.summary()["synthetic_demographic_parity_difference"] == pytest.approx(1.0)
    # a label independent of sex: the gap is sampling noise only
    report = datakiln.evaluate(_table(800, 0, False), _table(800, 2, False), holdout=_table(2000, 1, False),
                               target="label", sensitive="sex", privacy=False, detection=False)
    fair = report.utility["synthetic"]["fairness"]
    assert fair["demographic_parity_difference"] < 0.06
    holdout_groups = fair["groups"]
    assert holdout_groups["F"]["rows"] + holdout_groups["M"]["rows"] == 2000
    low, high = fair["equalized_odds_difference_interval"]
    assert low <= fair["equalized_odds_difference"] <= high


def test_sensitive_needs_a_classification_target_and_a_compared_column():
    real = _table(200, 0, False)
    with pytest.raises(InvalidArgumentError, match="pass target="):
        datakiln.evaluate(real, real, sensitive="sex", privacy=False, detection=False)
    with pytest.raises(InvalidArgumentError, match="not a compared column"):
        datakiln.evaluate(real, real, target="label", sensitive="race", privacy=False, detection=False)
    with pytest.raises(InvalidArgumentError, match="classification target"):
        datakiln.evaluate(real, real, target="x", sensitive="sex", privacy=False, detection=False)

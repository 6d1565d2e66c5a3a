import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import f1_score, roc_auc_score

import datakiln
from datakiln.errors import InvalidArgumentError
from datakiln.evaluation.utility import _binary_auc, _f1_scores


def test_fast_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.random(500) < 0.3
    score = np.round(rng.random(500) + truth * 0.4, 2)  # with ties
    assert _binary_auc(truth, score) == pytest.approx(roc_auc_score(truth, score))
    y, predicted = rng.integers(0, 4, 400).astype(float), rng.integers(0, 4, 400).astype(float)
    ours = _f1_scores(y, predicted, np.arange(4.0))
    assert np.allclose(ours, f1_score(y, predicted, average=None))


def test_utility_on_adult(adult, adult_test, adult_synthetic):
    report = datakiln.evaluate(adult, adult_synthetic, holdout=adult_test, target="income",
                               detection=False, privacy=False, sample_rows=40_000)
    utility = report.utility
    assert utility["task"] == "classification" and utility["minority_class"] == ">50K"
    assert utility["test_rows"] == adult_test.num_rows
    real = utility["real"]
    assert 0.91 < real["roc_auc"] < 0.94 and 0.65 < real["minority_f1"] < 0.75  # published: 0.927 / 0.70
    low, high = real["roc_auc_interval"]
    assert low < real["roc_auc"] < high and high - low < 0.02
    assert 0.7 < utility["synthetic"]["roc_auc"] < real["roc_auc"]
    ratio = utility["synthetic"]["roc_auc"] / real["roc_auc"]
    assert utility["synthetic_to_real_ratio"] == pytest.approx(ratio)


def test_regression_target_and_no_holdout(adult, adult_synthetic):
    report = datakiln.evaluate(adult, adult_synthetic, target="hours-per-week", detection=False,
                               privacy=False, sample_rows=8000)
    utility = report.utility
    assert utility["task"] == "regression" and utility["holdout"] == "20% of the real sample"
    assert utility["test_rows"] == 1600
    assert 0.05 < utility["real"]["r2"] < 0.5 and utility["real"]["mae"] > 0


def test_mismatched_holdout_labels_are_refused(adult, adult_path):
    raw_test = datakiln.read(adult_path.with_name("adult-test.csv"), names=adult.column_names)
    with pytest.raises(InvalidArgumentError, match="strip a trailing"):
        datakiln.evaluate(adult, adult, holdout=raw_test, target="income", detection=False, privacy=False)


def test_privacy_copies_are_counted_and_flagged(adult, adult_test, adult_synthetic):
    leaky = pa.concat_tables([adult.slice(0, 8000), adult_synthetic.slice(0, 24_561)])
    report = datakiln.evaluate(adult, leaky, holdout=adult_test, detection=False, sample_rows=10_000)
    privacy = report.privacy
    assert privacy["exact_copy_rate"] >= 8000 / 32561
    assert privacy["synthetic_rows_checked"] == 32561
    assert privacy["flagged"] and any("exact copies" in f for f in privacy["flags"])
    assert "no proof of privacy" in privacy["notice"]
    clean = datakiln.evaluate(adult, adult_synthetic, holdout=adult_test, detection=False, sample_rows=10_000)
    assert clean.privacy["exact_copy_rate"] < 0.01
    assert clean.privacy["membership_auc"] < 0.6 and not clean.privacy["flagged"]
    assert clean.privacy["dcr_share_closer_than_holdout"] < 0.6
    hist = clean.privacy["dcr_histogram"]
    assert len(hist["edges"]) == 31 and sum(hist["synthetic"]) == pytest.approx(1.0)


def test_json_has_the_documented_keys(adult, adult_test, adult_synthetic, tmp_path):
    report = datakiln.evaluate(adult, adult_synthetic, holdout=adult_test, target="income", sample_rows=5000)
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == data
    assert {"score", "column_shapes", "column_pair_trends", "detection_auc", "columns", "pairs"} <= set(
        data["fidelity"])
    assert {"dcr_share_closer_than_holdout", "exact_copy_rate", "membership_auc"} <= set(data["privacy"])
    assert {"real", "synthetic", "augmented", "task", "target"} <= set(data["utility"])
    assert 0.5 <= data["fidelity"]["detection_auc"] <= 1


def test_datetimes_and_booleans_are_compared():
    rng = np.random.default_rng(1)
    n = 4000
    stamps = pa.array(rng.integers(1.6e9, 1.7e9, n) * 1_000_000, type=pa.timestamp("us", tz="UTC"))
    real = pa.table({"when": stamps, "flag": pa.array(rng.random(n) < 0.3), "x": rng.normal(size=n)})
    shifted = real.set_column(0, "when", pc.add(real["when"], pa.scalar(86_400_000_000 * 400,
                                                                           type=pa.duration("us"))))
    report = datakiln.evaluate(real, shifted, privacy=False, detection=False)
    columns = {c["column"]: c for c in report.fidelity["columns"]}
    assert columns["when"]["role"] == "continuous" and columns["when"]["score"] < 0.95
    assert columns["flag"]["metric"] == "TVComplement" and columns["flag"]["score"] == 1.0


def test_a_holdout_taken_from_the_training_data_is_refused_or_flagged():
    """holdout=the training table: 100% exact copies went unflagged (the holdout's copy rate,
    100%, was the baseline), 'closer than holdout median' read 0.000 and membership 0.500."""
    rng = np.random.default_rng(0)
    train = pa.table({"x": rng.normal(size=400), "k": rng.choice(["a", "b", "c"], 400)})
    with pytest.raises(InvalidArgumentError, match="holdout.*is the training data"):
        datakiln.evaluate(train, train, holdout=pa.table(train.to_pydict()))  # another object
    part = datakiln.evaluate(train, train, holdout=train.slice(0, 200), detection=False)
    assert part.privacy["holdout_exact_copy_rate"] == 1.0 and part.privacy["flagged"]
    assert any("holdout rows are also training rows" in f for f in part.privacy["flags"])
    fresh = pa.table({"x": rng.normal(size=200), "k": rng.choice(["a", "b", "c"], 200)})
    clean = datakiln.evaluate(train, fresh, holdout=fresh.slice(0, 100), detection=False)
    assert not any("also training rows" in f for f in clean.privacy["flags"])

"""Evaluation, synthesis and balancing on the real samples vendored in ``tests/data``.

The module tests check their figures on the full Adult and bank-marketing files from
``../shared`` and skip without them; these run everywhere (a bare clone included), so every
module still meets real data. Expected values come from the raw files or from sanity
cases whose answer is known (a table against itself, against a column-wise shuffle).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import datakiln
from datakiln.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def synthetic(adult_sample: pa.Table) -> pa.Table:
    from datakiln.synth import GaussianCopula

    return GaussianCopula().fit(adult_sample).sample(adult_sample.num_rows, seed=1)


def test_evaluation_sanity_on_the_adult_sample(adult_sample, adult_sample_test):
    same = datakiln.evaluate(adult_sample, adult_sample, holdout=adult_sample_test, detection=False, seed=0)
    assert same.fidelity["score"] > 0.999
    assert same.privacy["exact_copy_rate"] == 1.0 and same.privacy["flagged"]
    rng = np.random.default_rng(0)
    shuffled = pa.table({n: adult_sample[n].take(pa.array(rng.permutation(adult_sample.num_rows)))
                         for n in adult_sample.column_names})
    noise = datakiln.evaluate(adult_sample, shuffled, privacy=False, detection=False, seed=0)
    assert noise.fidelity["column_shapes"] > 0.999  # each column alone is untouched
    assert noise.fidelity["column_pair_trends"] < same.fidelity["column_pair_trends"] - 0.1
    unseen = datakiln.evaluate(adult_sample, adult_sample_test, holdout=adult_sample_test.slice(0, 30),
                               detection=False, seed=0)
    assert unseen.privacy["exact_copy_rate"] == 0.0  # the test rows are other people


def test_a_table_is_not_detectable_from_itself(adult_sample):
    same = datakiln.evaluate(adult_sample, adult_sample, privacy=False, seed=0)
    assert same.fidelity["detection_auc"] < 0.65


def test_utility_and_privacy_of_a_copula_sample(adult_sample, adult_sample_test, synthetic):
    report = datakiln.evaluate(adult_sample, synthetic, holdout=adult_sample_test, target="income",
                               detection=False, seed=0)
    utility = report.utility
    assert utility["task"] == "classification" and utility["minority_class"] == ">50K"
    assert utility["test_rows"] == adult_sample_test.num_rows == 300
    assert 0.8 < utility["real"]["roc_auc"] <= 1 and 0.6 < utility["synthetic"]["roc_auc"] <= 1
    assert report.privacy["exact_copy_rate"] < 0.02 and report.privacy["synthetic_rows_checked"] == 600
    assert 0.8 < report.fidelity["score"] < 1
    leaky = pa.concat_tables([adult_sample.slice(0, 150), synthetic.slice(0, 450)])
    flagged = datakiln.evaluate(adult_sample, leaky, holdout=adult_sample_test, detection=False, seed=0)
    assert flagged.privacy["exact_copy_rate"] >= 150 / 600 and flagged.privacy["flagged"]


def test_raw_test_labels_are_refused_as_a_holdout(adult_sample):
    from tests.conftest import ADULT_COLUMNS, sample_dataset

    raw_test = datakiln.read(sample_dataset("adult/adult-test.csv"), names=ADULT_COLUMNS)
    with pytest.raises(InvalidArgumentError, match="strip a trailing"):
        datakiln.evaluate(adult_sample, adult_sample, holdout=raw_test, target="income",
                          detection=False, privacy=False)


def test_copula_sample_keeps_schema_categories_and_ranges(adult_sample, synthetic):
    assert synthetic.schema.equals(adult_sample.schema) and synthetic.num_rows == 600
    for name in ("workclass", "education", "income"):
        assert set(synthetic[name].drop_null().to_pylist()) <= set(adult_sample[name].to_pylist())
    for name in ("age", "hours-per-week"):
        assert pc.min(synthetic[name]).as_py() >= pc.min(adult_sample[name]).as_py()
        assert pc.max(synthetic[name]).as_py() <= pc.max(adult_sample[name]).as_py()
    share = pc.mean(pc.equal(synthetic["income"], ">50K").cast(pa.float64())).as_py()
    assert abs(share - 134 / 600) < 0.06  # the class share of the sample (134 of 600)


def test_balancing_the_bank_sample(bank_sample_path):
    out = datakiln.balance(datakiln.read(bank_sample_path), "y", method="random_under", seed=0).to_arrow()
    counts = dict(zip(*np.unique(out["y"].to_numpy(zero_copy_only=False), return_counts=True)))
    assert counts == {"no": 72, "yes": 72}  # the 72 'yes' rows of the sample, as many 'no'
    bank = datakiln.read(bank_sample_path).to_arrow()
    assert out.schema.equals(bank.schema)

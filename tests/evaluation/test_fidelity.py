import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import ks_2samp

import datakiln
from datakiln.errors import InvalidArgumentError, SchemaError


def _sdmetrics_quality(real: pa.Table, synthetic: pa.Table) -> tuple[float, float, float]:
    """SDMetrics' QualityReport with column types SDMetrics detects itself, never datakiln's roles.

    sdmetrics 0.32 (without SDV) detects metadata in ``SingleTableMetric._validate_inputs``
    when a metric gets none: sdtypes from the pandas dtype kinds of the real data.
    """
    from sdmetrics.reports.single_table.quality_report import QualityReport  # a dev dependency
    from sdmetrics.single_table.base import SingleTableMetric

    real_frame, synthetic_frame = real.to_pandas(), synthetic.to_pandas()
    detected = SingleTableMetric._validate_inputs(real_frame, synthetic_frame)[2]
    metadata = {"columns": detected["tables"]["table"]["columns"]}
    quality = QualityReport()
    quality.generate(real_frame, synthetic_frame, metadata, verbose=False)
    scores = quality.get_properties().set_index("Property")["Score"]
    return quality.get_score(), scores["Column Shapes"], scores["Column Pair Trends"]


def _noised(table: pa.Table, seed: int) -> pa.Table:
    """Adult with Gaussian noise on the numbers and 10% of each category column redrawn."""
    rng = np.random.default_rng(seed)
    columns = {}
    for name in table.column_names:
        column = table[name].combine_chunks()
        if pa.types.is_integer(column.type):
            x = column.to_numpy(zero_copy_only=False).astype(float)
            columns[name] = pa.array(np.round(x + rng.normal(0, x.std() * 0.2, len(x))).astype(np.int64))
        else:
            values = np.array(column.to_pylist(), dtype=object)
            redraw = rng.random(len(values)) < 0.1
            values[redraw] = rng.choice(values, redraw.sum())
            columns[name] = pa.array(values.tolist(), type=column.type)
    return pa.table(columns)


@pytest.mark.parametrize("which", ["copula", "noised"])
def test_agrees_with_sdmetrics_quality_report(adult, adult_synthetic, which):
    synthetic = adult_synthetic if which == "copula" else _noised(adult, 3)
    report = datakiln.evaluate(adult, synthetic, detection=False, privacy=False)
    score, shapes, trends = _sdmetrics_quality(adult, synthetic)
    assert abs(report.fidelity["column_shapes"] - shapes) < 0.01
    assert abs(report.fidelity["column_pair_trends"] - trends) < 0.01
    assert abs(report.fidelity["score"] - score) < 0.01


def test_ks_is_exact_when_the_tables_fit_the_sample():
    rng = np.random.default_rng(0)
    real = pa.table({"x": rng.normal(0, 1, 3000), "y": rng.integers(0, 5, 3000)})
    synthetic = pa.table({"x": rng.normal(0.2, 1.1, 2000), "y": rng.integers(0, 6, 2000)})
    report = datakiln.evaluate(real, synthetic, metadata={"y": "integer"}, detection=False, privacy=False)
    columns = {c["column"]: c for c in report.fidelity["columns"]}
    for name in ("x", "y"):
        expected = 1 - ks_2samp(real[name].to_numpy(), synthetic[name].to_numpy()).statistic
        assert columns[name]["score"] == pytest.approx(expected, abs=1e-12)


def test_streaming_batches_give_the_same_scores(adult, adult_synthetic, tmp_path):
    pq.write_table(adult, tmp_path / "real.parquet", row_group_size=3000)
    pq.write_table(adult_synthetic, tmp_path / "synth.parquet", row_group_size=2500)
    whole = datakiln.evaluate(adult, adult_synthetic, detection=False, privacy=False)
    streamed = datakiln.evaluate(datakiln.read(tmp_path / "real.parquet"),
                                 str(tmp_path / "synth.parquet"), detection=False, privacy=False,
                                 memory_budget="64MB")
    for key in ("column_shapes", "column_pair_trends", "missing_values", "coverage"):
        assert streamed.fidelity[key] == pytest.approx(whole.fidelity[key], abs=1e-9)


def test_sanity_self_shuffled_and_holdout(adult, adult_test):
    same = datakiln.evaluate(adult, adult, holdout=adult_test, sample_rows=40_000)
    assert same.fidelity["score"] > 0.999 and same.fidelity["detection_auc"] < 0.6
    assert same.privacy["exact_copy_rate"] == 1.0 and same.privacy["flagged"]
    assert same.privacy["membership_auc"] > 0.9
    rng = np.random.default_rng(0)
    shuffled = pa.table({n: adult[n].take(pa.array(rng.permutation(adult.num_rows)))
                         for n in adult.column_names})
    noise = datakiln.evaluate(adult, shuffled, privacy=False, sample_rows=5000)
    assert noise.fidelity["column_shapes"] > 0.999  # each column alone is untouched
    assert noise.fidelity["column_pair_trends"] < 0.8 and noise.fidelity["score"] < 0.9
    assert noise.fidelity["detection_auc"] > 0.8
    unseen = datakiln.evaluate(adult, adult_test, holdout=adult_test.slice(0, 1), sample_rows=5000)
    assert unseen.fidelity["score"] > 0.97
    assert unseen.privacy["exact_copy_rate"] < 0.01


def test_pair_records_and_distributions(adult, adult_synthetic):
    report = datakiln.evaluate(adult, adult_synthetic, detection=False, privacy=False)
    pairs = {tuple(p["columns"]): p for p in report.fidelity["pairs"]}
    assert len(pairs) == 15 * 14 // 2
    edu = pairs[("education", "education-num")]
    assert edu["metric"] == "ContingencySimilarity" and edu["real"] == pytest.approx(1.0)
    assert pairs[("age", "fnlwgt")]["metric"] == "CorrelationSimilarity"
    assert not pairs[("age", "fnlwgt")]["meets_threshold"]  # |r| = 0.08 is below 0.5
    columns = {c["column"]: c for c in report.fidelity["columns"]}
    assert columns["age"]["distribution"]["type"] == "histogram"
    assert sum(columns["age"]["distribution"]["real"]) == pytest.approx(1.0)
    assert columns["workclass"]["missing_real"] == pytest.approx(1836 / 32561)


def test_bad_inputs_name_the_problem(adult):
    with pytest.raises(SchemaError, match="lacks the real columns"):
        datakiln.evaluate(adult, adult.drop_columns(["age"]))
    with pytest.raises(InvalidArgumentError, match="target 'nope'"):
        datakiln.evaluate(adult, adult, target="nope", privacy=False, detection=False)
    with pytest.raises(InvalidArgumentError, match="unknown kind"):
        datakiln.evaluate(adult, adult, metadata={"age": "weird"})
    with pytest.raises(InvalidArgumentError, match="metadata names columns"):
        datakiln.evaluate(adult, adult, metadata={"nope": "numeric"})

"""Legal but degenerate inputs to ``evaluate`` (issue 12 item 7): a result or a clear error."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import InvalidArgumentError


def _table(n: int = 80, seed: int = 0, **extra: pa.Array) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.normal(size=n), "b": rng.choice(["x", "y"], n), **extra})


@pytest.mark.parametrize("dtype", [pa.float64(), pa.string(), pa.null()], ids=str)
def test_all_null_column_gets_a_note_not_a_crash(dtype):
    real = _table(z=pa.nulls(80, dtype))
    synth = _table(seed=1, z=pa.nulls(80, dtype))
    # detection and utility fit HistGradientBoosting, which cannot bin an all-missing feature
    report = datakiln.evaluate(real, synth, target="b", detection=dtype == pa.float64())
    z = next(c for c in json.loads(report.to_json())["fidelity"]["columns"] if c["column"] == "z")
    assert z["score"] is None and "every value is missing in the real and synthetic data" in z["note"]
    assert z["missing_similarity"] == 1.0
    assert z["distribution"]["labels"] and z["distribution"]["real"] == [1.0]  # never an empty plot
    assert report.utility["real"]["roc_auc"] is not None
    if dtype == pa.float64():
        assert 0.5 <= report.fidelity["detection_auc"] <= 1.0


def test_one_row_real_table_with_a_target():
    report = datakiln.evaluate(_table(1), _table(60, seed=1), target="b", detection=False)
    utility = report.utility
    assert "too few" in utility["note"] and utility["test_rows"] == 1
    assert utility["real"]["trained_rows"] == 0 and "error" in utility["real"]
    assert utility["synthetic"]["trained_rows"] == 60
    json.loads(report.to_json())


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_bad_seed_is_a_clear_error(seed):
    with pytest.raises(InvalidArgumentError, match="seed must be a whole number"):
        datakiln.evaluate(_table(), _table(seed=1), seed=seed)


def test_cli_bad_seed_exits_2(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(_table(), tmp_path / "r.parquet")
    result = CliRunner().invoke(app, ["evaluate", "--real", str(tmp_path / "r.parquet"), "--synthetic",
                                      str(tmp_path / "r.parquet"), "--seed", "-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_cli_one_row_real_table_with_a_target(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(_table(1, z=pa.nulls(1, pa.float64())), tmp_path / "real.parquet")
    pq.write_table(_table(60, seed=1, z=pa.nulls(60, pa.float64())), tmp_path / "synth.parquet")
    result = CliRunner().invoke(app, ["evaluate", "--real", str(tmp_path / "real.parquet"), "--synthetic",
                                      str(tmp_path / "synth.parquet"), "--target", "b"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())  # cells may wrap onto more lines
    assert "no ratio: no real score" in text and "ratio 0.000" not in text
    assert "too few for the scores" in text


def test_infinite_values_reach_the_models_without_numpy_warnings():
    # HistGradientBoosting's quantile binning of ±inf printed numpy RuntimeWarnings
    # ("invalid value encountered in subtract") on the user's terminal during kiln evaluate
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    x[:15], x[15:20] = np.inf, -np.inf
    real = _table(120, x=pa.array(x))
    synth = _table(120, seed=1, x=pa.array(np.roll(x, 7)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = datakiln.evaluate(real, synth, privacy=False)  # detection: the classifier
    assert 0.5 <= report.fidelity["detection_auc"] <= 1.0


def test_a_number_column_against_text_is_a_schema_mismatch():
    # the same names with shifted columns: a raw ArrowInvalid "Failed to parse string: 'y'"
    from datakiln.errors import SchemaMismatchError

    real = pa.table({"a": [1, 2, 3] * 10, "b": ["x", "y", "z"] * 10})
    shifted = pa.table({"a": ["x", "y", "z"] * 10, "b": [1, 2, 3] * 10})
    with pytest.raises(SchemaMismatchError, match="column 'a' holds int64 values in the real data but string "
                                                  "in the synthetic data"):
        datakiln.evaluate(real, shifted, detection=False, privacy=False)
    nulls = pa.table({"a": pa.nulls(30, pa.null()), "b": ["x", "y", "z"] * 10})  # all-null: comparable
    assert datakiln.evaluate(real, nulls, detection=False, privacy=False).fidelity["score"] is not None


def test_infinite_targets_are_left_out_of_utility():
    # a regression target holding ±inf reached HistGradientBoostingRegressor: "Input y contains
    # infinity" as an internal error
    x = np.random.default_rng(5).normal(size=80)
    x[:6] = np.inf
    real, synth = _table(x=pa.array(x)), _table(seed=1, x=pa.array(np.roll(x, 3)))
    utility = datakiln.evaluate(real, synth, target="x", detection=False, privacy=False).utility
    assert utility["real"]["trained_rows"] + utility["test_rows"] <= 74
    assert np.isfinite(utility["real"]["r2"])
    allinf = datakiln.evaluate(_table(z=pa.array([np.inf] * 80)), _table(seed=1, z=pa.array([np.inf] * 80)),
                               target="z", detection=False, privacy=False).utility
    assert "missing, NaN and ±inf targets are left out" in allinf["real"]["error"]

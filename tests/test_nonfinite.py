"""NaN, +inf and -inf in float columns: counted apart from nulls, never in moments or bins.

Through the profile (both its exact-count and its sketch paths), ``kiln inspect``,
``kiln clean`` and the Cleaner's steps, and the evaluation's fidelity section.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.clean import Cleaner, Impute, Outliers
from datakiln.cli.app import app


def _strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _column(values: np.ndarray, nulls: int = 0) -> pa.Array:
    mask = np.zeros(len(values) + nulls, dtype=bool)
    mask[len(values):] = True
    return pa.array(np.r_[values, np.zeros(nulls)], mask=mask, from_pandas=False)


@pytest.mark.parametrize("rows", [40, 5_000], ids=["exact-counts", "sketch"])
def test_profile_counts_non_finite_apart(rows):
    finite = np.random.default_rng(0).normal(10, 2, rows)
    values = np.r_[finite, [np.nan] * 3, [np.inf] * 2, [-np.inf]]
    table = pa.table({"x": _column(values, nulls=4)})
    column = datakiln.Dataset.from_arrow(table).profile()["x"]
    assert (column.nulls, column.nans, column.pos_inf, column.neg_inf) == (4, 3, 2, 1)
    assert column.non_finite == 6 and column.count == rows + 10
    assert column.min == pytest.approx(finite.min()) and column.max == pytest.approx(finite.max())
    assert column.mean == pytest.approx(finite.mean()) and column.std == pytest.approx(finite.std(ddof=1))
    assert column.quantiles["0.5"] == pytest.approx(np.median(finite))
    assert sum(column.histogram["counts"]) == pytest.approx(rows)
    assert all(np.isfinite(column.histogram["edges"]))
    data = _strict_json(datakiln.Dataset.from_arrow(table).profile().to_json())["columns"][0]
    assert (data["nulls"], data["nans"], data["pos_inf"], data["neg_inf"]) == (4, 3, 2, 1)


def test_profile_merges_counts_over_batches(tmp_path):
    values = np.tile([1.0, np.nan, np.inf, -np.inf, 2.0], 1_000)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"x": pa.array(values, from_pandas=False)}), path, row_group_size=700)
    column = datakiln.read(path).profile()["x"]
    assert (column.nans, column.pos_inf, column.neg_inf, column.nulls) == (1_000, 1_000, 1_000, 0)
    assert (column.min, column.max, column.mean) == (1.0, 2.0, 1.5)


def test_profile_all_infinite_column():
    table = pa.table({"x": pa.array([np.inf, -np.inf, np.inf]), "y": [1.0, 2.0, 3.0]})
    column = datakiln.Dataset.from_arrow(table).profile()["x"]
    assert (column.pos_inf, column.neg_inf) == (2, 1)
    assert column.min is None and column.mean is None and column.histogram is None
    assert column.quantiles == {}
    top = {v: c for v, c in column.top_values}
    assert top[np.inf] == 2 and top[-np.inf] == 1
    data = _strict_json(datakiln.Dataset.from_arrow(table).profile().to_json())["columns"][0]
    assert {t["value"]: t["count"] for t in data["top_values"]} == {"inf": 2, "-inf": 1}


@pytest.fixture
def nonfinite_parquet(tmp_path):
    values = np.r_[np.arange(1.0, 41.0), [np.nan, np.inf, -np.inf]]
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"x": pa.array(values, from_pandas=False),
                             "g": ["a", "b", "c"] * 14 + ["a"]}), path)
    return path


def test_inspect_cli_shows_non_finite(nonfinite_parquet):
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(nonfinite_parquet), "--json"])
    assert result.exit_code == 0, result.output
    x = _strict_json(result.stdout)["columns"][0]
    assert (x["nans"], x["pos_inf"], x["neg_inf"], x["min"], x["max"]) == (1, 1, 1, 1.0, 40.0)
    shown = runner.invoke(app, ["inspect", str(nonfinite_parquet)])
    assert shown.exit_code == 0, shown.output
    assert "1 NaN, 1 +inf, 1 -inf" in shown.stdout


def test_clean_cli_default_steps(nonfinite_parquet, tmp_path):
    out = tmp_path / "clean.parquet"
    result = CliRunner().invoke(app, ["clean", str(nonfinite_parquet), "-o", str(out)])
    assert result.exit_code == 0, result.output
    cleaned = pq.read_table(out)["x"].to_numpy()
    assert cleaned.size == 43 and np.isnan(cleaned[40]) and list(cleaned[41:]) == [np.inf, -np.inf]


def test_cleaner_steps_keep_non_finite_values():
    x = np.r_[np.arange(1.0, 41.0), [np.nan, np.inf, -np.inf]]
    mask = np.r_[np.zeros(40, bool), [True, False, True]]
    y = pa.array(np.r_[np.arange(40.0), [1.0, 2.0, 3.0]], mask=mask)
    table = pa.table({"x": pa.array(x, from_pandas=False), "y": y, "n": list(range(42)) + [None]})
    # the IQR fences come from the finite values: ±inf is outside them, NaN is not an outlier
    iqr = Cleaner([Outliers(method="iqr")])
    iqr.fit(table).transform(table)
    assert iqr.report_.to_dict()["steps"][0]["columns"]["x"]["outliers (iqr)"] == 2
    zscore = Cleaner([Outliers(method="zscore", action="clip")]).fit(table)
    assert zscore.steps[0].fences_["x"] == pytest.approx(
        (20.5 - 3 * np.std(np.arange(1, 41), ddof=1), 20.5 + 3 * np.std(np.arange(1, 41), ddof=1)))
    for strategy in ("median", "knn", "iterative"):
        out = Cleaner([Impute(strategy=strategy)]).fit(table).transform(table).to_arrow()
        x_out = out["x"].to_numpy()
        assert np.isnan(x_out[40]) and list(x_out[41:]) == [np.inf, -np.inf], strategy
        assert out["y"].null_count == 0 and out["y"].to_pylist()[41] == 2.0, strategy
    median = Cleaner([Impute(strategy="median")]).fit(table).transform(table).to_arrow()
    assert median["y"].to_pylist()[40] == 19.0  # median of 0..39 and 2, the finite values
    forest = Cleaner([Outliers(method="isolation_forest", action="flag")])
    with np.errstate(all="raise"):
        flagged = forest.fit(table).transform(table).to_arrow()
    assert flagged["__outlier"].null_count == 0


def _evaluated(real_z: np.ndarray, synth_z: np.ndarray, **kwargs) -> tuple[dict, dict]:
    rng = np.random.default_rng(1)
    n = len(real_z)
    tables = [pa.table({"a": rng.normal(size=n), "b": rng.choice(["x", "y"], n),
                        "z": pa.array(z, from_pandas=False)}) for z in (real_z, synth_z)]
    report = datakiln.evaluate(*tables, **kwargs)
    data = _strict_json(report.to_json())  # strict: no NaN or Infinity anywhere
    return report.fidelity, next(c for c in data["fidelity"]["columns"] if c["column"] == "z")


def test_evaluation_compares_non_finite_shares():
    rng = np.random.default_rng(0)
    real, synth = rng.normal(size=200), rng.normal(size=200)
    real[:40] = np.inf  # 20% +inf in the real data, none in the synthetic data
    real[40:50] = np.nan
    synth[:30] = np.nan
    synth[30:32] = -np.inf
    fidelity, z = _evaluated(real, synth, detection=False)
    assert z["non_finite_real"] == {"NaN": 0.05, "+inf": 0.2, "-inf": 0.0}
    assert z["non_finite_synthetic"] == {"NaN": 0.15, "+inf": 0.0, "-inf": 0.01}
    # TV complement over {NaN, +inf, -inf, finite}: ½(0.1 + 0.2 + 0.01 + |0.75 - 0.84|) = 0.2
    assert z["non_finite_similarity"] == pytest.approx(0.8)
    assert fidelity["non_finite_values"] == pytest.approx(0.9)  # mean over "a" (1.0) and "z"
    assert z["metric"] == "KSComplement" and 0 < z["score"] <= 1
    assert sum(z["distribution"]["real"]) == pytest.approx(1.0)  # finite values only, all binned
    assert all(np.isfinite(z["distribution"]["edges"]))


def test_evaluation_of_an_all_infinite_column():
    inf = np.full(60, np.inf)
    fidelity, same = _evaluated(inf, inf, detection=False)
    assert same["metric"] == "TVComplement" and same["score"] == 1.0 and "no finite values" in same["note"]
    assert same["distribution"] == {"type": "bars", "labels": ["+inf"], "real": [1.0], "synthetic": [1.0]}
    _, apart = _evaluated(inf, np.random.default_rng(0).normal(size=60))
    assert apart["score"] == 0.0 and apart["non_finite_similarity"] == 0.0
    assert apart["coverage"] is None  # no finite real range to cover
    _, reverse = _evaluated(np.random.default_rng(0).normal(size=60), inf, detection=False)
    assert reverse["coverage"] == 0.0 and reverse["score"] == 0.0
    assert apart["distribution"]["labels"] == ["finite", "+inf"]
    assert fidelity["score"] is not None and np.isfinite(fidelity["score"])


def test_privacy_and_detection_encode_non_finite_values():
    real = np.arange(120) * 10.0
    real[::4] = np.inf
    synth = real + 5.0  # every finite value halfway between two real ones: no copies
    report = datakiln.evaluate(pa.table({"z": pa.array(real, from_pandas=False)}),
                               pa.table({"z": pa.array(synth, from_pandas=False)}))
    assert 0.5 <= report.fidelity["detection_auc"] <= 1.0
    # distances scale by the finite range (an infinite range made every finite row look equal)
    low, high = real[np.isfinite(real)].min(), real[np.isfinite(real)].max()
    assert report.privacy["dcr_synthetic_median"] == pytest.approx(5.0 / (high - low), rel=1e-5)
    from datakiln.evaluation._columns import RowEncoder, column_roles

    table = pa.table({"z": pa.array([0.0, 1.0, np.nan, np.inf, -np.inf, None], from_pandas=False)})
    ds = datakiln.Dataset.from_arrow(table)
    embedded = RowEncoder(column_roles(ds, []), table).embedding(table)
    distance = np.linalg.norm(embedded[:, None] - embedded[None], axis=2)
    assert distance[0, 1] == pytest.approx(1.0)  # the finite range is [0, 1]
    assert distance[2:, 2:][~np.eye(4, dtype=bool)] == pytest.approx(np.ones(12))  # classes 1 apart
    assert distance[0, 2:] == pytest.approx(np.ones(4))

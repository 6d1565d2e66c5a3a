import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes
from datakiln.errors import InvalidArgumentError, SchemaError


def test_adult_missing_values_duplicates_and_imputation(adult_path, tmp_path):
    ds = datakiln.read(adult_path, names=ADULT_COLUMNS, block_bytes=400_000)
    cleaner = Cleaner([RepairTypes(), DropDuplicates(), Impute(strategy="mode")])
    cleaned = cleaner.fit(ds).transform(ds, output=tmp_path / "clean.parquet")
    report = cleaner.report_
    assert {c: report.missing_before[c] for c in ("workclass", "occupation", "native-country")} == {
        "workclass": 1836, "occupation": 1843, "native-country": 583}
    assert report.step("duplicates").rows_removed == 24
    frame = pd.read_csv(adult_path, header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                        na_values="?")
    assert frame.duplicated().sum() == 24  # the canonical count, by pandas
    deduped = frame.drop_duplicates()
    imputed = report.step("missing").columns
    for column in ("workclass", "occupation", "native-country"):
        assert imputed[column]["imputed (mode)"] == deduped[column].isna().sum()
    table = cleaned.to_arrow()
    assert table.num_rows == 32_537 and all(table[c].null_count == 0 for c in ADULT_COLUMNS)
    assert table["workclass"].to_pylist()[27] == "Private"  # row 28 of the file had '?'
    assert json.loads(report.to_json())["steps"][1]["rows_removed"] == 24


def test_imputation_strategies_and_thresholds():
    table = pa.table({"x": [1.0, None, 3.0, 10.0, None], "n": [1, 2, None, 4, 5],
                      "s": ["a", "a", None, "b", None], "sparse": [None, None, None, None, 1]})
    for strategy, expected in (("mean", 14 / 3), ("median", 3.0)):
        out = Cleaner([Impute(strategy=strategy, columns=["x"])]).fit_transform(table).to_arrow()
        assert out["x"].to_pylist()[1] == pytest.approx(expected)
    out = Cleaner([Impute(strategy="median", drop_columns_over=0.5)]).fit_transform(table).to_arrow()
    assert "sparse" not in out.column_names
    assert out["n"].to_pylist() == [1, 2, 3, 4, 5]  # the median of [1, 2, 4, 5] is 3, exactly
    assert out["s"].to_pylist() == ["a", "a", "a", "b", "a"]  # text columns get the mode
    rows = Cleaner([Impute(strategy="constant", fill_value=0, drop_rows_over=0.5)])
    kept = rows.fit_transform(table).to_arrow()
    assert kept.num_rows == 4 and rows.report_.step("missing").rows_removed == 1


def test_model_based_imputation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = 2 * x + rng.normal(scale=0.01, size=500)
    y_missing = y.copy()
    y_missing[::10] = np.nan
    table = pa.table({"x": x, "y": pa.array(y_missing, mask=np.isnan(y_missing))})
    for strategy in ("knn", "iterative"):
        out = Cleaner([Impute(strategy=strategy)]).fit_transform(table).to_arrow()
        filled = out["y"].to_numpy()[::10]
        assert np.abs(filled - y[::10]).mean() < 0.2, strategy


def test_repair_types_whitespace_case_numbers_dates_ranges():
    table = pa.table({
        "n": [" 12", "7 ", "5", "3", None] * 20 + ["x"],
        "d": ["2021-03-04", "2021-03-05", "2021-03-06", "2021-03-07", None] * 20 + ["oops"],
        "sex": ["Male", "male ", "MALE", "Female", "Male"] * 20 + ["Female"],
        "age": [30, 200, 45, -1, 50] * 20 + [60],
    })
    cleaner = Cleaner([RepairTypes(ranges={"age": [0, 120]})])
    out = cleaner.fit_transform(table).to_arrow()
    assert out["n"].type == pa.int64() and out["n"].to_pylist()[:5] == [12, 7, 5, 3, None]
    assert out["n"][-1].as_py() is None
    assert pa.types.is_timestamp(out["d"].type) and out["d"].null_count == 21
    assert set(out["sex"].to_pylist()) == {"Male", "Female"}
    assert out["age"].to_pylist()[:5] == [30, None, 45, None, 50]
    changes = cleaner.report_.step("repair").columns
    assert changes["n"] == {"whitespace trimmed": 40, "text parsed as number": 80,
                            "unparsable text set to null": 1}
    assert changes["d"] == {"text parsed as date": 80, "unparsable text set to null": 1}
    assert changes["sex"]["case unified"] == 40
    assert changes["age"]["impossible value set to null"] == 40


def test_outlier_methods_and_actions():
    values = np.r_[np.random.default_rng(1).normal(50, 5, 995), [500, -400, 1000, 900, 800]]
    table = pa.table({"v": values})
    flagged = Cleaner([Outliers(method="zscore", action="flag")]).fit_transform(table).to_arrow()
    assert pc.sum(flagged["v__outlier"].cast(pa.int64())).as_py() == 5
    clipped = Cleaner([Outliers(method="iqr", action="clip")]).fit_transform(table).to_arrow()
    assert pc.max(clipped["v"]).as_py() < 100
    dropped = Cleaner([Outliers(method="iqr", action="drop")]).fit_transform(table).to_arrow()
    assert dropped.num_rows < 1000 and pc.max(dropped["v"]).as_py() < 100
    forest = Cleaner([Outliers(method="isolation_forest", action="flag")])
    out = forest.fit_transform(table).to_arrow()
    assert all(out["__outlier"].to_pylist()[-5:])


def test_duplicates_subset_and_keep_last():
    table = pa.table({"k": [1, 2, 1, 3, 2], "v": ["a", "b", "c", "d", "e"]})
    first = Cleaner([DropDuplicates(subset=["k"])]).fit_transform(table).to_arrow()
    assert first["v"].to_pylist() == ["a", "b", "d"]
    last = Cleaner([DropDuplicates(subset=["k"], keep="last")]).fit_transform(table).to_arrow()
    assert last["v"].to_pylist() == ["c", "d", "e"]


def test_fit_on_one_split_apply_to_another():
    train = pa.table({"x": [1.0, 2.0, None, 4.0]})
    test = pa.table({"x": [None, 100.0]})
    cleaner = Cleaner([Impute(strategy="mean")]).fit(train)
    assert cleaner.transform(test).to_arrow()["x"].to_pylist() == [pytest.approx(7 / 3), 100.0]


def test_config_files_and_errors(tmp_path):
    config = tmp_path / "clean.yaml"
    config.write_text("steps:\n  - repair: {trim: true}\n  - missing: {strategy: median}\n")
    cleaner = Cleaner.from_config(config)
    assert [type(s).__name__ for s in cleaner.steps] == ["RepairTypes", "Impute"]
    with pytest.raises(SchemaError, match="unknown cleaning step 'scrub'"):
        Cleaner.from_config({"steps": [{"scrub": {}}]})
    with pytest.raises(SchemaError, match="step 'missing'"):
        Cleaner.from_config({"steps": [{"missing": {"strategy": "mean", "bogus": 1}}]})
    with pytest.raises(InvalidArgumentError, match="strategy must be one of"):
        Cleaner([Impute(strategy="magic")]).fit(pa.table({"x": [1.0]}))
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        Cleaner().transform(pa.table({"x": [1]}))
    with pytest.raises(SchemaError, match="must be numeric"):
        Cleaner([Outliers(columns=["s"])]).fit(pa.table({"s": ["a"]}))


CHILD = """
import json, resource, sys
import datakiln
from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes
cleaner = Cleaner([RepairTypes(), DropDuplicates(), Impute(strategy="median"),
                   Outliers(method="iqr", action="clip")], memory_budget=sys.argv[3])
dataset = datakiln.read(sys.argv[1])
dataset.schema
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cleaner.fit(dataset).transform(dataset, output=sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"growth": after - before, "rows": cleaner.report_.rows_out,
                  "dropped": cleaner.report_.step("duplicates").rows_removed}))
"""


def test_cleaning_memory_stays_within_budget_on_data_larger_than_it(tmp_path):
    import subprocess
    import sys

    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    for _ in range(12):  # 12 × 250,000 rows
        values = rng.normal(size=(250_000, 4))
        values[:, :2][rng.random((250_000, 2)) < 0.05] = np.nan  # never a whole row
        values[1::50] = values[::50][: len(values[1::50])]  # 2 % duplicate rows
        table = pa.table({f"f{i}": pa.array(values[:, i], mask=np.isnan(values[:, i]))
                          for i in range(4)})
        writer = writer or pq.ParquetWriter(tmp_path / "big.parquet", table.schema)
        writer.write_table(table)
    writer.close()  # 96 MB as Arrow, cleaned within a 40 MB budget
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "big.parquet"),
                          str(tmp_path / "clean.parquet"), "40MB"], capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout)
    assert result["dropped"] == 60_000
    assert result["rows"] == 2_940_000
    assert result["growth"] < 60_000_000, result


def test_repair_keeps_codes_with_leading_zeros_as_text():
    """The default clean parsed zip codes as numbers: "00501" and "501" both became 501
    (five distinct codes became three) and ids "000001" lost their zeros."""
    codes = ["00501", "501", "02134", "2134", "90210"] * 40
    table = pa.table({"zip": codes, "id": [f"{i:06d}" for i in range(200)],
                      "n": [str(i) for i in range(200)], "x": [f"{i / 7:.3f}" for i in range(200)]})
    out = Cleaner([RepairTypes()]).fit_transform(table).to_arrow()
    assert out["zip"].to_pylist() == codes and out["id"].to_pylist()[:2] == ["000000", "000001"]
    assert out["n"].type == pa.int64() and out["x"].type == pa.float64()  # "0.143" is a number

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln


def test_adult_profile_is_exact_where_it_says_so(adult_path):
    ds = datakiln.read(adult_path, names=ADULT_COLUMNS)
    profile = ds.profile()
    frame = pd.read_csv(adult_path, header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                        na_values="?")
    assert profile.rows == 32_561
    for name in ADULT_COLUMNS:
        column = profile[name]
        assert column.nulls == frame[name].isna().sum(), name
        if column.distinct_exact:
            assert column.distinct == frame[name].nunique(), name
        else:
            assert abs(column.distinct - frame[name].nunique()) / frame[name].nunique() < 0.05
    age = profile["age"]
    assert (age.min, age.max) == (17, 90)
    assert age.mean == pytest.approx(frame["age"].mean())
    assert age.std == pytest.approx(frame["age"].std())
    assert age.quantiles["0.5"] == frame["age"].median()  # all rows fit the sample: exact
    assert profile["income"].top_values == [("<=50K", 24_720), (">50K", 7_841)]
    assert profile["workclass"].top_values[0] == ("Private", 22_696)
    fnlwgt = profile["fnlwgt"]
    assert fnlwgt.top_exact  # from the sample, which holds every row here
    assert fnlwgt.top_values[0][1] == frame["fnlwgt"].value_counts().iloc[0]
    assert sum(age.histogram["counts"]) == pytest.approx(32_561)


def test_profile_of_many_rows_uses_sketches_within_their_error(tmp_path):
    rng = np.random.default_rng(1)
    rows = 400_000
    table = pa.table({
        "x": rng.normal(10, 2, rows),
        "k": rng.integers(0, 50_000, rows),
        "c": pa.array(rng.choice(["a", "b", "c"], rows, p=[0.7, 0.2, 0.1])),
        "t": pa.array(np.datetime64("2020-01-01") + rng.integers(0, 10**6, rows).astype("timedelta64[s]")),
    })
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=50_000)
    profile = datakiln.read(tmp_path / "t.parquet").profile(sample_rows=20_000, seed=3)
    x = profile["x"]
    assert x.mean == pytest.approx(table["x"].to_numpy().mean())
    assert x.std == pytest.approx(table["x"].to_numpy().std(ddof=1))
    for level, value in x.quantiles.items():  # rank error of a 20,000-row sample: < 1.5 %
        rank = (table["x"].to_numpy() <= value).mean()
        assert abs(rank - float(level)) < 0.015, level
    true_distinct = len(np.unique(table["k"].to_numpy()))
    assert not profile["k"].distinct_exact
    assert abs(profile["k"].distinct - true_distinct) / true_distinct < 0.05
    c = profile["c"]
    assert c.distinct_exact and c.distinct == 3 and c.top_exact
    assert dict(c.top_values) == dict(zip(*np.unique(table["c"].to_numpy(zero_copy_only=False),
                                                      return_counts=True)))
    assert profile["t"].min == table["t"].to_pylist()[int(np.argmin(table["t"].to_numpy()))]
    again = datakiln.read(tmp_path / "t.parquet").profile(sample_rows=20_000, seed=3)
    assert again.to_dict()["columns"] == profile.to_dict()["columns"]  # same seed, same profile


def test_profile_json_keys_and_progress(every_kind):
    seen = []
    profile = datakiln.from_arrow(every_kind).profile(on_progress=seen.append)
    assert sum(seen) == 500
    data = json.loads(profile.to_json())
    assert set(data) >= {"rows", "columns", "seconds", "rows_per_second"}
    first = data["columns"][0]
    assert set(first) >= {"name", "kind", "type", "nulls", "distinct", "min", "max", "mean",
                          "std", "quantiles", "top_values"}
    joined = next(c for c in data["columns"] if c["name"] == "joined")
    assert joined["min"].endswith("+00:00")  # time zones survive into JSON


CHILD = textwrap.dedent("""
    import json, resource, sys
    import datakiln
    ds = datakiln.read(sys.argv[1])
    ds.schema  # imports and inference done before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    profile = ds.profile(memory_budget=sys.argv[2])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": profile.rows, "growth": after - before, "peak": after}))
""")


def _profile_in_child(path, budget):
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), budget], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def _write_floats(path, rows, columns, row_group):
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, row_group):
        table = pa.table({f"f{i}": rng.normal(size=min(row_group, rows - start))
                          for i in range(columns)})
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()


def test_profile_memory_stays_within_budget_on_data_three_times_larger(tmp_path):
    path = tmp_path / "big.parquet"
    _write_floats(path, rows=4_000_000, columns=4, row_group=250_000)  # 128 MB as Arrow
    result = _profile_in_child(path, "40MB")
    assert result["rows"] == 4_000_000
    assert result["growth"] < 40_000_000, result


@pytest.mark.slow
def test_profile_of_50_million_rows_within_1gb(tmp_path):
    """Acceptance: 50M rows × 12 columns, peak RSS of the whole process under 1 GB."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[2] / "benchmarks"))
    from _tables import write_mixed

    path = write_mixed(tmp_path / "big.parquet", 50_000_000, "parquet", chunk=1_000_000,
                       row_group=500_000)
    result = _profile_in_child(path, "1GB")
    assert result["rows"] == 50_000_000
    assert result["peak"] < 1_000_000_000, result


def test_pandas_category_and_timedelta_columns_profile(tmp_path):
    """pandas' category dtype (a Parquet dictionary column) and Timedelta (duration) are
    ordinary data: Arrow's value_counts/count_distinct/min_max have no kernel for them."""
    rng = np.random.default_rng(0)
    n = 3000  # over 200 rows, and a many-valued dictionary column that is sampled, not counted
    frame = pd.DataFrame({
        "c": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "many": pd.Categorical([f"v{i}" for i in range(n)]),
        "d": pd.to_timedelta(np.arange(n), unit="s"),
    })
    frame.to_parquet(tmp_path / "t.parquet")
    profile = {c.name: c for c in datakiln.read(tmp_path / "t.parquet").profile().columns}
    assert dict(profile["c"].top_values) == frame["c"].value_counts().to_dict()
    assert profile["c"].distinct == 3 and profile["c"].distinct_exact
    assert (profile["c"].min, profile["c"].max) == ("a", "c")
    assert profile["many"].distinct == pytest.approx(n, rel=0.05)
    assert (profile["d"].min, profile["d"].max) == (pd.Timedelta(0), pd.Timedelta(seconds=n - 1))
    assert profile["d"].nulls == 0


def test_nested_columns_profile_rows_and_nulls_never_crash(tmp_path):
    from typer.testing import CliRunner

    from datakiln.cli.app import app

    path = tmp_path / "nested.jsonl"
    path.write_text('{"x": 1, "a": {"b": 1}, "l": [1, 2]}\n{"x": 2, "a": {"b": 2}, "l": [3]}\n'
                    '{"x": 3, "a": null, "l": null}\n')
    profile = datakiln.read(path).profile()
    by_name = {c.name: c for c in profile.columns}
    assert by_name["x"].kind == "integer" and by_name["x"].max == 3
    for name, dtype in (("a", "struct<b: int64>"), ("l", "list<item: int64>")):
        column = by_name[name]
        assert (column.kind, column.type, column.count, column.nulls, column.distinct) == (
            "nested", dtype, 3, 1, None)
        assert "only rows and nulls are profiled" in column.evidence[0]
    assert profile.to_dict()["columns"][1]["kind"] == "nested"
    shown = CliRunner().invoke(app, ["inspect", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "nested" in shown.output and "Error" not in shown.output

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.errors import InvalidArgumentError, MemoryBudgetError, SchemaError


@pytest.fixture
def numbers():
    table = pa.table({"a": list(range(1000)), "b": [i % 7 for i in range(1000)],
                      "s": [f"x{i}" for i in range(1000)]})
    return datakiln.Dataset.from_arrow(table), table


def test_operations_are_lazy_and_immutable(numbers):
    ds, table = numbers
    calls = []

    def double(t):
        calls.append(t.num_rows)
        return t.set_column(0, "a", pc.multiply(t["a"], 2))

    mapped = ds.filter(pc.field("b") == 3).map_batches(double)
    assert calls == []  # nothing ran yet
    derived = mapped.select(["a", "b"])  # the mapped schema comes from running one table
    assert ds.columns == ["a", "b", "s"] and derived.columns == ["a", "b"]
    result = derived.to_arrow()
    assert result["a"].to_pylist() == [2 * i for i in range(1000) if i % 7 == 3]
    assert "filter" in repr(derived) and "map" in repr(derived)


def test_head_count_limit_and_rebatching(numbers):
    ds, table = numbers
    ds.source.batch_rows = 64
    assert ds.head(3).to_pydict() == table.slice(0, 3).to_pydict()
    assert ds.count() == 1000
    assert ds.filter(pc.field("b") == 0).count() == 143
    assert ds.limit(130).count() == 130
    assert ds.limit(130).map_batches(lambda t: t.slice(0, 1)).count() == 3  # limit, then map
    batches = list(ds.iter_batches(batch_rows=300))
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    assert pa.Table.from_batches(batches).equals(table)
    assert ds.limit(0).to_arrow().num_rows == 0


def test_map_batches_accepts_pandas_and_dicts(numbers):
    ds, _ = numbers
    assert ds.map_batches(lambda t: t.to_pandas().head(1)).count() == 1
    assert ds.map_batches(lambda t: {"n": [t.num_rows]}).to_arrow()["n"].to_pylist() == [1000]
    with pytest.raises(InvalidArgumentError, match="returned int"):
        ds.map_batches(lambda t: 5).to_arrow()


def test_results_keep_source_order_with_many_threads(adult_path):
    ds = datakiln.read(adult_path, names=ADULT_COLUMNS, block_bytes=100_000)
    many = datakiln.Dataset(ds.source, num_threads=8)
    one = datakiln.Dataset(ds.source, num_threads=1)
    assert many.to_arrow().equals(one.to_arrow())
    assert pa.Table.from_batches(list(many.iter_batches())).equals(ds.to_arrow())


def test_bad_operations_are_clear(numbers):
    ds, _ = numbers
    with pytest.raises(SchemaError, match=r"no column\(s\) \['zzz'\]"):
        ds.select(["a", "zzz"])
    with pytest.raises(InvalidArgumentError, match="pc.field"):
        ds.filter("a > 3")
    with pytest.raises(SchemaError, match="does not fit the columns"):
        ds.filter(pc.field("nope") > 3)
    with pytest.raises(InvalidArgumentError):
        ds.limit(-1)
    with pytest.raises(InvalidArgumentError):
        list(ds.iter_batches(batch_rows=0))


def test_fingerprint_changes_with_data_and_operations(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n2\n")
    first = datakiln.read(path)
    assert first.fingerprint == datakiln.read(path).fingerprint
    assert first.fingerprint != first.limit(1).fingerprint
    path.write_text("a\n1\n2\n3\n")
    assert datakiln.read(path).fingerprint != first.fingerprint


def test_pandas_round_trip_and_kind_overrides():
    import pandas as pd

    frame = pd.DataFrame({"zip": ["01234", "99999"], "n": [1, 2]})
    ds = datakiln.from_pandas(frame, kinds={"zip": "categorical"})
    assert ds.schema["zip"].kind == "categorical"
    assert ds.with_kinds({"n": "numeric"}).schema.kinds == {"zip": "categorical", "n": "numeric"}
    assert ds.to_pandas().equals(frame)


def test_memory_budget_too_small_for_one_task(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": list(range(200_000))}), tmp_path / "t.parquet")
    ds = datakiln.read(tmp_path / "t.parquet", memory_budget="100kB")
    with pytest.raises(MemoryBudgetError, match="raise the budget"):
        list(ds.iter_batches())


def test_read_task_over_budget_names_the_fourfold_need():
    # "needs about 260.0 kB but the memory budget is 1.0 MB" read as a contradiction: a task
    # is counted four times (raw, decoded, temporaries)
    table = pa.table({"a": [float(i) for i in range(20_000)], "b": ["x"] * 20_000})
    with pytest.raises(MemoryBudgetError, match=r"needs about 1\.0 MB \(260\.0 kB of data"):
        list(datakiln.from_arrow(table)._tables(memory_budget=1_000_000))


def test_schema_file_naming_a_missing_column_is_refused(tmp_path):
    # a typo in a --schema file ('ghost: numeric') was ignored without a word
    path = tmp_path / "data.csv"
    path.write_text("a,c\n1,p\n2,q\n")
    with pytest.raises(SchemaError, match=r"do not exist: \['ghost'\]; the columns are \['a', 'c'\]"):
        _ = datakiln.read(path, schema={"ghost": "numeric"}).schema
    kept = datakiln.read(path, schema={"c": "text"}).select(["a"])  # dropped by a select: fine
    assert kept.schema.kinds == {"a": "integer"}


@pytest.mark.parametrize(("option", "value"), [("top_k", -1), ("top_k", 2.5), ("sample_rows", 0)])
def test_profile_refuses_negative_top_k_and_empty_samples(option, value):
    # top_k=-1 listed all values but one (a slice [:-1]) without a word
    ds = datakiln.from_arrow(pa.table({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "y"]}))
    with pytest.raises(InvalidArgumentError, match=f"{option}.* must be a whole number"):
        ds.profile(**{option: value})
    assert ds.profile(top_k=0).columns[1].top_values in ([], None)


def test_from_pandas_mixed_object_column_and_repeated_names_are_schema_errors():
    import pandas as pd

    with pytest.raises(SchemaError, match=r"Conversion failed for column m .*astype\(str\)"):
        datakiln.from_pandas(pd.DataFrame({"m": [1, "a", 2.5, None] * 3}))
    with pytest.raises(SchemaError, match=r"the column\(s\) \['a'\] more than once"):
        datakiln.from_pandas(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    twice = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(SchemaError, match=r"the table has the column\(s\) \['a'\] more than once"):
        datakiln.from_arrow(twice)

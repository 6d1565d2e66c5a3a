import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.dataset._permute import permute
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.splits import split


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**40))
def test_permute_is_a_bijection(n, key):
    shuffled = permute(np.arange(n, dtype=np.uint64), n, key)
    assert sorted(shuffled.tolist()) == list(range(n))


def test_stratified_three_way_split_of_adult(adult, tmp_path):
    whole = pc.mean(pc.equal(adult["income"], ">50K").cast(pa.float64())).as_py()
    streamed = datakiln.from_arrow(adult)
    streamed.source.batch_rows = 3000  # many tables: the deal must not depend on batching
    parts = split(streamed, (0.8, 0.1, 0.1), stratify="income", seed=7, output=tmp_path)
    assert sum(parts.counts.values()) == 32_561
    for name in ("train", "validation", "test"):
        table = parts[name].to_arrow()
        share = pc.mean(pc.equal(table["income"], ">50K").cast(pa.float64())).as_py()
        assert abs(share - whole) < 0.001, name  # within 0.1 percentage points
        for label, n in (("<=50K", 24_720), (">50K", 7_841)):
            expected = n * {"train": 0.8, "validation": 0.1, "test": 0.1}[name]
            assert abs(parts.class_counts[name][label] - expected) <= 1  # within one row
    assert json.loads((tmp_path / "split.json").read_text())["counts"] == parts.counts
    rows = pa.concat_tables([parts[n].to_arrow() for n in ("train", "validation", "test")])
    assert rows.sort_by([(c, "ascending") for c in adult.column_names]).equals(
        adult.sort_by([(c, "ascending") for c in adult.column_names]))  # every row exactly once
    again = split(datakiln.from_arrow(adult), (0.8, 0.1, 0.1), stratify="income", seed=7)
    assert again["test"].to_arrow().equals(parts["test"].to_arrow())  # batching does not matter
    other = split(datakiln.from_arrow(adult), (0.8, 0.1, 0.1), stratify="income", seed=8)
    assert not other["test"].to_arrow().equals(parts["test"].to_arrow())


def test_random_split_sizes_and_reproducibility():
    table = pa.table({"x": np.arange(1001)})
    first = split(table, (0.5, 0.5), seed=1)
    assert first.counts == {"train": 501, "test": 500} or first.counts == {"train": 500, "test": 501}
    assert split(table, (0.5, 0.5), seed=1)["train"].to_arrow().equals(first["train"].to_arrow())


def test_group_split_has_no_leakage(adult):
    parts = split(adult, (0.7, 0.3), group="native-country", seed=0)
    seen = [set(parts[n].to_arrow()["native-country"].to_pylist()) for n in ("train", "test")]
    assert not (seen[0] & seen[1])
    assert sum(parts.counts.values()) == 32_561


def test_time_split_orders_and_never_straddles():
    days = np.repeat(np.arange(100), 10)
    table = pa.table({"day": pa.array(days.astype("datetime64[D]")), "v": np.arange(1000)})
    parts = split(table, (0.6, 0.2, 0.2), time="day")
    ranges = [pc.min_max(parts[n].to_arrow()["day"]) for n in ("train", "validation", "test")]
    assert parts.counts == {"train": 600, "validation": 200, "test": 200}
    assert ranges[0]["max"].as_py() < ranges[1]["min"].as_py()
    assert ranges[1]["max"].as_py() < ranges[2]["min"].as_py()


def test_rare_classes_error_or_go_to_train():
    table = pa.table({"y": ["a"] * 50 + ["b"] * 50 + ["lonely"]})
    with pytest.raises(SchemaError, match="class 'lonely' .* has 1 row"):
        split(table, (0.8, 0.1, 0.1), stratify="y")
    parts = split(table, (0.8, 0.1, 0.1), stratify="y", rare="train")
    assert parts.class_counts["train"]["lonely"] == 1


def test_bad_arguments():
    table = pa.table({"y": [1, 2, 3]})
    with pytest.raises(InvalidArgumentError, match="summing to 1"):
        split(table, (0.5, 0.2))
    with pytest.raises(InvalidArgumentError, match="one of stratify"):
        split(table, (0.5, 0.5), stratify="y", group="y")
    with pytest.raises(SchemaError, match="no column 'z'"):
        split(table, (0.5, 0.5), stratify="z")
    with pytest.raises(InvalidArgumentError, match="distinct names"):
        split(table, (0.5, 0.5), names=["a", "a"])


def test_stratify_on_an_all_null_column_is_one_class():
    """Issue 12 item 7: an all-null column raised ArrowTypeError (null vs string value set)."""
    table = pa.table({"a": list(range(10)), "z": pa.nulls(10, pa.string()), "n": pa.nulls(10)})
    for column in ("z", "n"):
        parts = split(table, (0.8, 0.1, 0.1), stratify=column, seed=3)
        assert parts.counts == {"train": 8, "validation": 1, "test": 1}
        assert parts.class_counts == {"train": {"None": 8}, "validation": {"None": 1}, "test": {"None": 1}}
        rows = [v for n in ("train", "validation", "test") for v in parts[n].to_arrow()["a"].to_pylist()]
        assert sorted(rows) == list(range(10))


def test_too_few_rows_without_stratify_says_so():
    """Issue 12 item 14: a plain random split of one row blamed 'class None of None'."""
    with pytest.raises(SchemaError) as info:
        split(pa.table({"a": [1]}), (0.8, 0.1, 0.1))
    message = str(info.value)
    assert "None" not in message and "1 row(s)" in message and "3 splits" in message
    assert split(pa.table({"a": [1]}), (0.8, 0.1, 0.1), rare="train").counts == {
        "train": 1, "validation": 0, "test": 0}


@pytest.mark.parametrize("kwargs", [{}, {"group": "a"}, {"stratify": "a"}])
def test_negative_seed_is_refused(kwargs):
    with pytest.raises(InvalidArgumentError, match="seed must be a whole number"):
        split(pa.table({"a": list(range(20))}), (0.5, 0.5), seed=-1, **kwargs)


@pytest.mark.parametrize(("rows", "expected"), [(3, [1, 1, 1]), (5, [3, 1, 1]), (12, [10, 1, 1])])
def test_few_rows_still_give_every_split_one(rows, expected):
    # 3 rows at 0.8/0.1/0.1 were dealt 3/0/0: empty validation and test files, no message
    table = pa.table({"x": list(range(rows)), "y": ["a"] * rows})
    result = datakiln.split(table, fractions=(0.8, 0.1, 0.1), seed=0)
    assert [result[name].count() for name in ("train", "validation", "test")] == expected
    strat = datakiln.split(table, fractions=(0.8, 0.1, 0.1), stratify="y", seed=0)
    assert [strat[name].count() for name in ("train", "validation", "test")] == expected


def test_split_names_must_be_distinct_file_names(tmp_path):
    """names=["train", "Train", ...] wrote Train.parquet beside train.parquet (one replaces the
    other on macOS and Windows); "x/y" or "../up" failed late with a misleading 'no such file'."""
    data = datakiln.from_arrow(pa.table({"i": list(range(100))}))
    for names in (["train", "Train", "test"], ["x/y", "b", "c"], ["../up", "b", "c"], [".hidden", "b", "c"]):
        with pytest.raises(InvalidArgumentError, match="names"):
            datakiln.split(data, names=names, output=tmp_path / "o", seed=1)
    assert not (tmp_path / "o").exists() and not (tmp_path / "up.parquet").exists()
    parts = datakiln.split(data, names=["fit", "tune", "score"], output=tmp_path / "o", seed=1)
    assert sum(parts[n].count() for n in ("fit", "tune", "score")) == 100


def test_group_split_gives_every_split_a_group_or_says_why():
    # two big groups into 0.8/0.1/0.1 went all to train: empty validation and test, no message
    table = pa.table({"g": ["p"] * 150 + ["q"] * 150, "x": list(range(300))})
    with pytest.raises(SchemaError, match=r"group column 'g' has 2 group\(s\), too few to give each"):
        datakiln.split(table, group="g", seed=0)
    three = pa.table({"g": ["a"] * 100 + ["b"] * 100 + ["c"] * 100, "x": list(range(300))})
    result = datakiln.split(three, group="g", seed=0)
    counts = [result[name].count() for name in ("train", "validation", "test")]
    assert sorted(counts) == [100, 100, 100]
    two = datakiln.split(table, group="g", fractions=(0.8, 0.2), seed=0)
    assert sorted(two[name].count() for name in ("train", "test")) == [150, 150]


def test_a_split_directory_reads_as_its_rows_without_split_json(tmp_path):
    table = pa.table({"x": list(range(200)), "y": ["a", "b", "c", "d"] * 50})
    out = tmp_path / "splits"
    parts = split(datakiln.from_arrow(table), (0.8, 0.1, 0.1), seed=1, output=out)
    assert (out / "split.json").exists()
    whole = datakiln.read(out)  # was: "the files mix formats ['json', 'parquet']"
    assert whole.count() == 200 == sum(parts.counts.values())
    assert whole.columns == ["x", "y"]
    assert sorted(whole.to_arrow()["x"].to_pylist()) == list(range(200))
    assert whole.profile().columns[0].count == 200
    manifest = json.loads((out / "_datakiln.json").read_text())
    assert manifest["sidecars"] == ["split.json"]
    del manifest["sidecars"]  # a manifest written before sidecars were recorded
    (out / "_datakiln.json").write_text(json.dumps(manifest))
    assert datakiln.read(out).count() == 200
    (out / "_datakiln.json").unlink()  # not datakiln's directory: its files are all data, as before
    with pytest.raises(datakiln.DatakilnError, match=r"mix formats \['json', 'parquet'\]"):
        datakiln.read(out)

import os

import pyarrow as pa
import pytest
from tests.conftest import ADULT_COLUMNS

import datakiln
from datakiln.errors import SchemaError, UnsupportedFormatError


def test_csv_to_parquet_round_trip_is_lossless_on_adult(adult_path, tmp_path):
    csv = datakiln.read(adult_path, names=ADULT_COLUMNS)
    result = csv.write(tmp_path / "adult.parquet")
    assert result.rows == 32_561 and result.files == [str(tmp_path / "adult.parquet")]
    assert datakiln.read(result.path).to_arrow().equals(csv.to_arrow())
    import pyarrow.parquet as pq

    assert pq.ParquetFile(result.path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_every_kind_round_trips_through_parquet_csv_and_jsonl(tmp_path, every_kind):
    ds = datakiln.from_arrow(every_kind)
    ds.write(tmp_path / "t.parquet")
    assert datakiln.read(tmp_path / "t.parquet").to_arrow().equals(every_kind)
    ds.write(tmp_path / "t.csv", format="csv")
    types = {f.name: f.type for f in every_kind.schema}
    back = datakiln.read(tmp_path / "t.csv", column_types=types, trim=False, na_values=[""])
    assert back.to_arrow().equals(every_kind)
    ds.write(tmp_path / "t.jsonl", format="jsonl")
    lines = datakiln.read(tmp_path / "t.jsonl").to_arrow()
    assert lines["note"].to_pylist() == every_kind["note"].to_pylist()
    assert lines["age"].to_pylist() == every_kind["age"].to_pylist()


def test_every_kind_csv_to_parquet_to_dataset_chain_is_lossless(tmp_path, every_kind):
    datakiln.from_arrow(every_kind).write(tmp_path / "t.csv", format="csv")
    types = {f.name: f.type for f in every_kind.schema}
    csv = datakiln.read(tmp_path / "t.csv", column_types=types, trim=False, na_values=[""])
    csv.write(tmp_path / "t.parquet")
    back = datakiln.read(tmp_path / "t.parquet").to_arrow()
    assert back.equals(every_kind)  # NULLs, UTC time zone, unicode, decimals
    assert back["joined"].type.tz == "UTC" and "東京" in back["city"].to_pylist()


def test_shards_and_partitions(tmp_path, every_kind):
    ds = datakiln.from_arrow(every_kind)
    result = ds.write(tmp_path / "shards", rows_per_file=120)
    assert [os.path.basename(f) for f in result.files] == [f"part-{i:05d}.parquet" for i in range(5)]
    assert datakiln.read(tmp_path / "shards").to_arrow().equals(every_kind)
    parts = ds.write(tmp_path / "parts", partition_by=["city"], format="csv")
    assert {os.path.basename(os.path.dirname(f)) for f in parts.files} >= {"city=Paris",
                                                                           "city=Z%C3%BCrich"}
    assert parts.rows == 500


def test_a_crash_mid_write_leaves_the_old_output(tmp_path):
    target = tmp_path / "out.parquet"
    datakiln.from_arrow(pa.table({"a": [1, 2, 3]})).write(target)

    def explode(table):
        if table["a"][0].as_py() >= 4:
            raise RuntimeError("disk on fire")
        return table

    big = datakiln.Dataset.from_arrow(pa.table({"a": list(range(10))}))
    big._source.batch_rows = 4
    with pytest.raises(RuntimeError, match="disk on fire"):
        big.map_batches(explode).write(target)
    assert datakiln.read(target).to_arrow()["a"].to_pylist() == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]  # no temporary left behind
    with pytest.raises(RuntimeError):
        big.map_batches(explode).write(tmp_path / "dir", rows_per_file=2)
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]


def test_overwrite_replaces_a_directory_atomically(tmp_path):
    first = datakiln.from_arrow(pa.table({"a": list(range(10))}))
    first.write(tmp_path / "d", rows_per_file=3)
    datakiln.from_arrow(pa.table({"a": [42]})).write(tmp_path / "d", rows_per_file=3)
    assert datakiln.read(tmp_path / "d").to_arrow()["a"].to_pylist() == [42]
    assert os.listdir(tmp_path) == ["d"]


def test_write_errors(tmp_path):
    ds = datakiln.from_arrow(pa.table({"a": [1]}))
    with pytest.raises(UnsupportedFormatError, match="xlsx"):
        ds.write(tmp_path / "x", format="xlsx")
    with pytest.raises(SchemaError, match="partition_by"):
        ds.write(tmp_path / "x", partition_by=["b"])
    with pytest.raises(UnsupportedFormatError, match="URLs"):
        ds.write("s3://bucket/x.parquet")

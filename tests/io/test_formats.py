"""Parquet (files, directories, hive partitions), JSON Lines / arrays, Arrow IPC, fsspec URLs."""

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from tests.conftest import every_kind_table

import datakiln
from datakiln.errors import EmptySourceError, ParseError, SchemaMismatchError


def test_parquet_file_directory_and_pushdown(tmp_path, every_kind):
    pq.write_table(every_kind, tmp_path / "one.parquet", row_group_size=100)
    ds = datakiln.read(tmp_path / "one.parquet")
    assert ds.count() == 500 and ds.source.estimate_size().exact
    assert ds.to_arrow().equals(every_kind)
    assert len(list(ds.iter_batches())) == 5  # one read task per row group
    picked = ds.filter(pc.field("age") > 80).select(["id", "age"]).to_arrow()
    expected = every_kind.filter(pc.field("age") > 80).select(["id", "age"])
    assert picked.equals(expected)
    folder = tmp_path / "folder"
    folder.mkdir()
    pq.write_table(every_kind.slice(0, 200), folder / "a.parquet")
    pq.write_table(every_kind.slice(200), folder / "b.parquet")
    (folder / "_SUCCESS").write_text("")
    assert datakiln.read(folder).to_arrow().equals(every_kind)


def test_hive_partitions(tmp_path, every_kind):
    out = datakiln.from_arrow(every_kind).write(tmp_path / "parts", partition_by=["member"])
    assert any("member=true" in f for f in out.files)
    back = datakiln.read(tmp_path / "parts")
    assert back.count() == 500
    assert "member" in back.columns
    table = back.to_arrow()
    trues = pc.sum(pc.cast(pc.equal(table["member"], "true"), pa.int64())).as_py()
    assert trues == pc.sum(pc.cast(every_kind["member"], pa.int64())).as_py()


def test_parquet_schema_mismatch_and_corrupt_file(tmp_path):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x1.parquet")
    pq.write_table(pa.table({"a": ["text"]}), tmp_path / "x2.parquet")
    with pytest.raises(SchemaMismatchError, match=r"x2.parquet.*a: string.*a: int64"):
        datakiln.read(str(tmp_path / "x*.parquet"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ParseError, match="bad.parquet"):
        datakiln.read(tmp_path / "bad.parquet")


def test_json_lines_and_arrays(tmp_path):
    rows = [{"id": i, "name": f"n{i}", "score": i / 2, "tags": None} for i in range(1000)]
    lines = tmp_path / "rows.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    array = tmp_path / "rows.json"
    array.write_text(json.dumps(rows, indent=1))
    for path in (lines, array):
        ds = datakiln.read(path, block_bytes=4096) if path == lines else datakiln.read(path)
        table = ds.to_arrow()
        assert table.num_rows == 1000
        assert table["id"].to_pylist() == list(range(1000))
        assert table["score"][3].as_py() == 1.5
    assert len(list(datakiln.read(lines, block_bytes=4096).iter_batches())) > 5


def test_json_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("  \n")
    with pytest.raises(EmptySourceError):
        datakiln.read(tmp_path / "empty.jsonl")
    (tmp_path / "scalar.json").write_text("42")
    with pytest.raises(ParseError, match="neither JSON Lines"):
        datakiln.read(tmp_path / "scalar.json")
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(ParseError, match="broken.jsonl"):
        datakiln.read(tmp_path / "broken.jsonl").to_arrow()
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "b.jsonl").write_text('{"b": 1}\n')
    with pytest.raises(SchemaMismatchError, match="b.jsonl"):
        datakiln.read([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])


def test_arrow_ipc_and_feather(tmp_path, every_kind):
    feather.write_feather(every_kind, tmp_path / "t.feather", chunksize=128)
    ds = datakiln.read(tmp_path / "t.feather")
    assert ds.to_arrow().equals(every_kind)
    assert ds.count() == 500 and len(list(ds.iter_batches())) == 4
    (tmp_path / "bad.arrow").write_bytes(b"nope")
    with pytest.raises(ParseError, match="not an Arrow IPC file"):
        datakiln.read(tmp_path / "bad.arrow")


def test_fsspec_memory_url():
    fsspec = pytest.importorskip("fsspec")
    table = every_kind_table(50)
    fs = fsspec.filesystem("memory")
    with fs.open("/kiln/t.parquet", "wb") as handle:
        pq.write_table(table, handle)
    with fs.open("/kiln/t.csv", "wb") as handle:
        handle.write(b"a,b\n1,x\n2,y\n")
    assert datakiln.read("memory://kiln/t.parquet").to_arrow().equals(table)
    assert datakiln.read("memory://kiln/t.csv").to_arrow().to_pydict() == {"a": [1, 2],
                                                                           "b": ["x", "y"]}
    assert datakiln.read("memory://kiln/*.parquet").count() == 50

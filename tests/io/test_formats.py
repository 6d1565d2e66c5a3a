"""Parquet (files, directories, hive partitions), JSON Lines / arrays, Arrow IPC, fsspec URLs."""

import gzip
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from tests.conftest import every_kind_table

import datakiln
from datakiln.errors import (
    EmptySourceError,
    InvalidArgumentError,
    ParseError,
    SchemaError,
    SchemaMismatchError,
)


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
    assert table.schema.field("member").type == pa.bool_()  # the manifest keeps its type
    trues = pc.sum(pc.cast(table["member"], pa.int64())).as_py()
    assert trues == pc.sum(pc.cast(every_kind["member"], pa.int64())).as_py()
    assert table["member"].null_count == every_kind["member"].null_count


def test_hive_partition_columns_keep_their_types(tmp_path):
    """A key=value directory holds text: string codes "007" and "7" were read back as the
    integer 7 (merged), dates and booleans as strings; datakiln's manifest keeps the types."""
    import datetime

    table = pa.table({
        "code": ["007", "7", "08", None],
        "day": pa.array([datetime.date(2024, 1, d) for d in (1, 2, 2, 3)]),
        "at": pa.array([datetime.datetime(2024, 1, 1, 12, 0, 0, 5)] * 4, pa.timestamp("us", "Europe/Paris")),
        "n": pa.array([1, 2 ** 40, 3, 1], pa.int64()),
        "v": [1.0, 2.0, 3.0, 4.0],
    })
    for key in ("code", "day", "at", "n"):
        datakiln.from_arrow(table).write(tmp_path / key, partition_by=[key])
        back = datakiln.read(tmp_path / key).to_arrow().sort_by("v")
        assert back.schema.field(key).type == table.schema.field(key).type, key
        assert back[key].to_pylist() == table[key].to_pylist(), key


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


# -- hostile and degenerate JSON (issue 12) ---------------------------------------------------

def _jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_lines_errors_name_the_line_in_the_file(tmp_path):
    """Once '(row N of its chunk)', counted from a 4 MB block inside a 32 MB range."""
    lines = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(3000)]
    bad = list(lines)
    bad[2200] = '{"id": 2200, "name": '
    path = _jsonl(tmp_path / "bad.jsonl", bad)
    for options in ({}, {"block_bytes": 4096, "infer_bytes": 1000}):
        with pytest.raises(ParseError, match=r"bad.jsonl' line 2201: invalid JSON") as caught:
            datakiln.read(path, **options).to_arrow()
        assert "chunk" not in str(caught.value)
    typed = list(lines)
    typed[2900] = '{"id": "x2900", "name": "n"}'
    path = _jsonl(tmp_path / "typed.jsonl", typed)
    with pytest.raises(SchemaError, match=r"typed.jsonl' line 2901: values do not fit"):
        list(datakiln.read(path, block_bytes=4096).iter_batches())
    gz = tmp_path / "typed.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(SchemaError, match=r"typed.jsonl.gz' line 2901"):
        datakiln.read(gz, block_bytes=4096).to_arrow()


def test_json_on_bad_rows_skip_counts_each_record(tmp_path):
    lines = [json.dumps({"id": i}) for i in range(1000)]
    lines[10] = "not json"
    lines[500] = "[1, 2]"
    lines[900] = '{"id": "text"}'
    path = _jsonl(tmp_path / "mixed.jsonl", lines)
    for source in (path, tmp_path / "mixed.jsonl.gz"):
        if source.suffix == ".gz":
            source.write_bytes(gzip.compress(path.read_bytes()))
        ds = datakiln.read(source, block_bytes=2048, on_bad_rows="skip")
        assert ds.to_arrow()["id"].to_pylist() == [i for i in range(1000) if i not in (10, 500, 900)]
        assert ds.stats["bad_rows"] == 3
        assert [e["line"] for e in ds.stats["examples"]] == [11, 501, 901]
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"id": 1}, 7, {"id": 3}]))
    ds = datakiln.read(array, on_bad_rows="skip")
    assert ds.to_arrow()["id"].to_pylist() == [1, 3] and ds.stats["bad_rows"] == 1
    with pytest.raises(InvalidArgumentError, match="on_bad_rows"):
        datakiln.read(path, on_bad_rows="drop")


def test_json_byte_order_mark_and_broken_gzip(tmp_path):
    bom = b"\xef\xbb\xbf"
    lines = tmp_path / "bom.jsonl"
    lines.write_bytes(bom + b'{"a": 1}\n{"a": 2}\n')
    assert datakiln.read(lines).to_arrow().to_pydict() == {"a": [1, 2]}
    array = tmp_path / "bom.json"
    array.write_bytes(bom + b'[{"a": 1}]')
    assert datakiln.read(array).to_arrow().to_pydict() == {"a": [1]}
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(b'{"a": 1}\n')
    with pytest.raises(ParseError, match=r"fake.jsonl.gz' cannot be decompressed as gzip"):
        datakiln.read(fake)


def test_json_memory_budget_costs_the_file_not_a_block(tmp_path):
    path = _jsonl(tmp_path / "small.jsonl", [json.dumps({"a": i}) for i in range(100)])
    assert sum(b.num_rows for b in datakiln.read(path, memory_budget="2MB").iter_batches()) == 100


def test_degenerate_json_lines(tmp_path):
    (tmp_path / "fields.jsonl").write_text("{}\n{}\n")
    with pytest.raises(EmptySourceError, match=r"fields.jsonl.*no fields"):
        datakiln.read(tmp_path / "fields.jsonl")
    (tmp_path / "open.jsonl").write_text("{")
    with pytest.raises(EmptySourceError, match=r"open.jsonl.*no record"):
        datakiln.read(tmp_path / "open.jsonl", on_bad_rows="skip")
    with pytest.raises(ParseError, match=r"open.jsonl' line 1: invalid JSON"):
        datakiln.read(tmp_path / "open.jsonl")
    (tmp_path / "blank.jsonl").write_text('{"a": 1}\n\n\n' + "\n" * 50 + '{"a": 2}\n')
    ds = datakiln.read(tmp_path / "blank.jsonl", block_bytes=8)
    assert ds.to_arrow()["a"].to_pylist() == [1, 2] and ds.count() == 2


def test_null_lines_in_json_lines_are_bad_records_not_a_crash(tmp_path):
    """pyarrow reads a `null` line as a row of nulls and segfaults on a block of only such
    lines; run in a child process so that a crash fails this test instead of the suite."""
    import subprocess
    import sys

    path = tmp_path / "nulls.jsonl"
    path.write_text('{"a": 1}\nnull\n\nnull\n{"a": 4}\n')
    child = (
        "import sys, datakiln\n"
        "from datakiln.errors import ParseError\n"
        "try:\n"
        "    datakiln.read(sys.argv[1], block_bytes=8).to_arrow()\n"
        "except ParseError as exc:\n"
        "    print('ParseError', exc)\n"
        "ds = datakiln.read(sys.argv[1], block_bytes=8, on_bad_rows='skip')\n"
        "print(ds.to_arrow()['a'].to_pylist(), ds.stats['bad_rows'])\n")
    out = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "nulls.jsonl' line 2: a record must be a JSON object, found null" in lines[0]
    assert lines[1] == "[1, 4] 2"

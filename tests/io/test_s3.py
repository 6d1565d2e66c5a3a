"""s3:// round trips against a real S3 API (moto's server on loopback, started by conftest).

References are independent of datakiln's readers: pyarrow reading the objects through s3fs,
the local files the data came from, and the bucket listing itself.
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from tests.conftest import IN_CI, sample_dataset
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import DatakilnError, InvalidArgumentError, OutputExistsError, SourceNotFoundError

s3fs = pytest.importorskip("s3fs") if not IN_CI else __import__("s3fs")  # CI: a failure, not a skip


def _fs():
    return s3fs.S3FileSystem()


def _table(rows: int, offset: int = 0) -> pa.Table:
    ids = pa.array(range(offset, offset + rows), pa.int64())
    return pa.table({"id": ids, "x": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
                     "city": pa.array(["oslo", "lima", "pune", None] * (rows // 4) + ["oslo"] * (rows % 4))})


def _objects(url: str) -> list[str]:
    fs = _fs()
    fs.invalidate_cache()
    root = url.removeprefix("s3://")
    return sorted(p[len(root) + 1:] for p in fs.find(root))


def _pyarrow_read(url: str, names: list[str]) -> pa.Table:
    """The objects read by pyarrow through s3fs, concatenated in the order given."""
    fs = _fs()
    root = url.removeprefix("s3://")
    return pa.concat_tables(pq.read_table(f"{root}/{n}", filesystem=fs) for n in names)


def test_parquet_one_object_round_trip(s3_bucket):
    table = _table(1000)
    url = f"{s3_bucket}/data/one.parquet"
    result = datakiln.from_arrow(table).write(url)
    assert result.files == [url] and result.rows == 1000
    assert result.bytes == _fs().size(url)
    assert pq.read_table(url.removeprefix("s3://"), filesystem=_fs()).equals(table)
    assert datakiln.read(url).to_arrow().equals(table)
    datakiln.from_arrow(_table(10)).write(url)  # its own earlier output: replaced
    assert datakiln.read(url).count() == 10
    with pytest.raises(InvalidArgumentError, match="a prefix"):  # not an object named "data"
        datakiln.from_arrow(table).write(f"{s3_bucket}/data/")


def test_multi_object_output_is_listed_by_its_manifest(s3_bucket):
    table = _table(1000)
    url = f"{s3_bucket}/parts"
    result = datakiln.from_arrow(table).write(url, rows_per_file=300)
    manifest = json.loads(_fs().cat_file(f"{url.removeprefix('s3://')}/_datakiln.json"))
    listed = [f["path"] for f in manifest["files"]]
    assert len(listed) == 4 and all(n.startswith("part-0000") for n in listed)
    record = f"_datakiln.runs/{manifest['run']}.json"  # the current run's, marked committed
    assert _objects(url) == sorted(["_datakiln.json", record, *listed])  # nothing else left behind
    assert json.loads(_fs().cat_file(f"{url.removeprefix('s3://')}/{record}"))["committed"] is True
    assert manifest["rows"] == 1000 and [f["bytes"] for f in manifest["files"]] == [
        _fs().size(f"{url.removeprefix('s3://')}/{n}") for n in listed]
    assert result.files == [f"{url}/{n}" for n in listed]
    assert _pyarrow_read(url, listed).equals(table)
    assert datakiln.read(url).to_arrow().equals(table)

    datakiln.from_arrow(_table(500, offset=7)).write(url, rows_per_file=200)  # replaces its own
    after = json.loads(_fs().cat_file(f"{url.removeprefix('s3://')}/_datakiln.json"))
    assert _objects(url) == sorted(["_datakiln.json", f"_datakiln.runs/{after['run']}.json",
                                    *(f["path"] for f in after["files"])])
    assert datakiln.read(url).to_arrow().equals(_table(500, offset=7))


def test_partitioned_parquet_csv_and_jsonl_round_trip(s3_bucket):
    table = _table(400)
    datakiln.from_arrow(table).write(f"{s3_bucket}/by_city", partition_by=["city"])
    names = _objects(f"{s3_bucket}/by_city")
    assert "city=oslo" in {n.split("/")[0] for n in names} and "city=__HIVE_DEFAULT_PARTITION__" in {
        n.split("/")[0] for n in names}
    back = datakiln.read(f"{s3_bucket}/by_city").to_arrow().sort_by("id")
    assert back.column("id").equals(table.column("id"))
    assert back.column("x").to_pylist() == table.column("x").to_pylist()
    assert back.column("city").cast(pa.string()).to_pylist() == table.column("city").to_pylist()

    datakiln.from_arrow(table).write(f"{s3_bucket}/csv", rows_per_file=150, format="csv")
    assert datakiln.read(f"{s3_bucket}/csv").to_arrow().equals(table)

    datakiln.from_arrow(table).write(f"{s3_bucket}/rows.jsonl")
    lines = _fs().cat_file(f"{s3_bucket.removeprefix('s3://')}/rows.jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(400))
    assert datakiln.read(f"{s3_bucket}/rows.jsonl").to_arrow().column("x").equals(table.column("x"))


def test_reads_a_prefix_written_by_another_tool(s3_bucket):
    fs = _fs()
    root = s3_bucket.removeprefix("s3://")
    expected = []
    for i in range(3):
        part = _table(100, offset=100 * i)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(part, sink)
        fs.pipe_file(f"{root}/csvs/f{i}.csv", sink.getvalue().to_pybytes())
        expected.append(part)
    fs.pipe_file(f"{root}/csvs/_SUCCESS", b"")
    back = datakiln.read(f"{s3_bucket}/csvs").to_arrow()
    assert back.column("id").equals(pa.concat_tables(expected).column("id"))


def test_foreign_objects_are_never_replaced(s3_bucket):
    fs = _fs()
    root = s3_bucket.removeprefix("s3://")
    ds = datakiln.from_arrow(_table(100))
    ds.write(f"{s3_bucket}/mine", rows_per_file=50)
    fs.pipe_file(f"{root}/mine/notes.txt", b"someone else's")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        ds.write(f"{s3_bucket}/mine", rows_per_file=50, overwrite=True)
    assert fs.cat_file(f"{root}/mine/notes.txt") == b"someone else's"
    assert datakiln.read(f"{s3_bucket}/mine").count() == 100  # the manifest still rules

    fs.pipe_file(f"{root}/theirs.parquet", b"not datakiln's")
    with pytest.raises(OutputExistsError, match="did not write"):
        ds.write(f"{s3_bucket}/theirs.parquet")
    ds.write(f"{s3_bucket}/theirs.parquet", overwrite=True)
    assert datakiln.read(f"{s3_bucket}/theirs.parquet").count() == 100
    with pytest.raises(OutputExistsError, match="overlaps the input"):
        datakiln.read(f"{s3_bucket}/mine").write(f"{s3_bucket}/mine/again", rows_per_file=50)


def test_split_writes_its_files_to_one_committed_prefix(s3_bucket, adult_sample):
    result = datakiln.split(adult_sample, (0.5, 0.5), names=["train", "test"], seed=3,
                            output=f"{s3_bucket}/splits")
    manifest = json.loads(_fs().cat_file(f"{s3_bucket.removeprefix('s3://')}/splits/_datakiln.json"))
    assert len(manifest["sidecars"]) == 1 and manifest["sidecars"][0].startswith("split-dk")
    train = datakiln.read(result.paths["train"]).to_arrow()
    test = datakiln.read(result.paths["test"]).to_arrow()
    assert train.num_rows + test.num_rows == adult_sample.num_rows
    assert datakiln.read(f"{s3_bucket}/splits").count() == adult_sample.num_rows  # no split.json rows
    # the plain names a local split has: the manifest says which object each one is
    assert datakiln.read(f"{s3_bucket}/splits/train.parquet").to_arrow().equals(train)
    with pytest.raises(SourceNotFoundError, match="no such object"):
        datakiln.read(f"{s3_bucket}/splits/other.parquet").to_arrow()


def test_image_folder_and_tar_shards_round_trip(s3_bucket, tmp_path):
    local = tmp_path / "cifar"  # 8 real images per class (the loopback server takes ~10 ms a request)
    for folder in sorted(sample_dataset("images/cifar").iterdir()):
        (local / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:8]:
            (local / folder.name / image.name).write_bytes(image.read_bytes())
    fs = _fs()
    fs.put(str(local), f"{s3_bucket.removeprefix('s3://')}/cifar", recursive=True)
    remote = datakiln.read_images(f"{s3_bucket}/cifar").to_arrow()
    here = datakiln.read_images(local).to_arrow()
    assert remote.num_rows == here.num_rows == 24
    assert remote.column("image").equals(here.column("image"))
    assert remote.column("label").to_pylist() == here.column("label").to_pylist()

    runner = CliRunner()
    out = runner.invoke(app, ["convert", f"{s3_bucket}/cifar", f"{s3_bucket}/shards", "--to", "tar",
                              "--rows-per-file", "10"])
    assert out.exit_code == 0, out.output
    shards = [n for n in _objects(f"{s3_bucket}/shards") if n.endswith(".tar")]
    assert len(shards) == 3 and all(n.startswith("shard-") for n in shards)
    back = datakiln.read_images(f"{s3_bucket}/shards").to_arrow()
    assert back.column("image").equals(here.column("image"))
    assert back.column("label").to_pylist() == here.column("label").to_pylist()


def test_cli_convert_from_local_csv_to_s3(s3_bucket, adult_sample_path):
    runner = CliRunner()
    out = runner.invoke(app, ["convert", str(adult_sample_path), f"{s3_bucket}/adult",
                              "--rows-per-file", "250"])
    assert out.exit_code == 0, out.output
    assert "s3://" in out.output and "3 files" in out.output
    local = datakiln.read(adult_sample_path).to_arrow()
    assert datakiln.read(f"{s3_bucket}/adult").to_arrow().equals(local)


def test_credentials_never_appear_in_errors_or_logs(s3_bucket, caplog, monkeypatch):
    secret = "datakiln-test-secret-4f7a"
    caplog.set_level(logging.DEBUG)  # botocore and s3fs included
    datakiln.from_arrow(_table(50)).write(f"{s3_bucket}/logged", rows_per_file=20)
    datakiln.read(f"{s3_bucket}/logged").to_arrow()
    with pytest.raises(SourceNotFoundError) as missing:
        datakiln.read("s3://no-such-bucket-dk/x.parquet").to_arrow()
    try:
        with monkeypatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
            patch.setenv("AWS_MAX_ATTEMPTS", "1")
            s3fs.S3FileSystem.clear_instance_cache()
            with pytest.raises(DatakilnError) as unreachable:
                datakiln.from_arrow(_table(5)).write(f"{s3_bucket}/down.parquet")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()  # the next test's instance points at moto again
    for text in (str(missing.value), str(unreachable.value), caplog.text):
        assert secret not in text
    assert "AWS_ENDPOINT_URL" in str(unreachable.value)
    assert len(caplog.records) > 0  # the check looked at real log output


def test_a_failed_write_leaves_the_old_output_and_no_objects(s3_bucket):
    from datakiln.io.write import write_tables

    table = _table(400)
    datakiln.from_arrow(table).write(f"{s3_bucket}/one.parquet")
    datakiln.from_arrow(table).write(f"{s3_bucket}/parts", rows_per_file=100)
    before = _objects(s3_bucket)

    def failing():
        yield _table(300, offset=9000)
        raise RuntimeError("the source broke")

    for url, options in ((f"{s3_bucket}/one.parquet", {}), (f"{s3_bucket}/parts", {"rows_per_file": 100})):
        with pytest.raises(RuntimeError, match="the source broke"):
            write_tables(failing(), table.schema, url, **options)
    assert _objects(s3_bucket) == before  # aborted uploads, deleted parts, no run record
    assert datakiln.read(f"{s3_bucket}/one.parquet").to_arrow().equals(table)
    assert datakiln.read(f"{s3_bucket}/parts").to_arrow().equals(table)


def test_any_fsspec_store_gets_the_same_commit():
    """memory:// (fsspec's in-process store) takes the same manifest commit as s3://."""
    import uuid

    import fsspec

    url = f"memory://kiln-{uuid.uuid4().hex[:8]}/parts"
    datakiln.from_arrow(_table(100)).write(url, rows_per_file=30)
    datakiln.from_arrow(_table(60, offset=5)).write(url, rows_per_file=50)
    root = url.removeprefix("memory:/")
    names = sorted(p[len(root) + 1:] for p in fsspec.filesystem("memory").find(root))
    assert len(names) == 4 and names[0] == "_datakiln.json"  # the first output's 4 parts are gone
    assert names[1].startswith("_datakiln.runs/")  # the current run's record
    assert datakiln.read(url).to_arrow().equals(_table(60, offset=5))


def test_objects_written_by_other_processes_join_the_commit():
    """The hook a distributed writer (Ray tasks) uses: write at object_url, adopt, commit."""
    import uuid

    import fsspec

    from datakiln.io.objectstore import RemoteOutput

    url = f"memory://kiln-{uuid.uuid4().hex[:8]}/ray"
    memory = fsspec.filesystem("memory")
    output = RemoteOutput(url, directory=True)
    for i in range(3):
        target = output.object_url(f"part-{i:05d}.parquet")
        with fsspec.open(target, "wb") as handle:
            pq.write_table(_table(10, offset=10 * i), handle)
        output.adopt(f"part-{i:05d}.parquet", memory.size(target.removeprefix("memory://")))
    with pytest.raises(SourceNotFoundError):
        datakiln.read(url).to_arrow()  # written but not committed: not read
    output.commit(format="parquet", rows=30)
    assert datakiln.read(url).to_arrow().column("id").to_pylist() == list(range(30))


def test_balance_writes_and_rereads_an_s3_output(s3_bucket, adult_sample):
    url = f"{s3_bucket}/balanced.parquet"
    balanced = datakiln.balance(adult_sample, "income", method="random_under", seed=0, output=url)
    counts = pc.value_counts(balanced.to_arrow().column("income")).to_pylist()
    assert len({c["counts"] for c in counts}) == 1  # classes equal after under-sampling
    written = pq.read_table(url.removeprefix("s3://"), filesystem=_fs())  # the object itself
    assert written.num_rows == balanced.count() == 2 * min(c["counts"] for c in counts)


def test_two_writers_committing_at_once_leave_no_orphans(s3_bucket, monkeypatch):
    """B reads the manifest before A commits and writes its own after: the last commit wins,
    A's objects (unlisted now) are deleted, and the next write is not refused for them."""
    import datakiln.io._output as output_module
    from datakiln.io.objectstore import RemoteOutput

    url = f"{s3_bucket}/both"
    datakiln.from_arrow(_table(20)).write(url, rows_per_file=10)
    writers = {name: RemoteOutput(url, directory=True) for name in ("a", "b")}
    for offset, writer in enumerate(writers.values()):
        stream = writer.open(writer.path / "part-00000.parquet")
        pq.write_table(_table(5, offset=100 * (offset + 1)), stream)
        stream.close()
    real_pause = output_module.test_pause
    order = []

    def pause(stage):  # B has read the previous manifest: A commits now, before B's PUT
        if stage == "commit" and not order:
            order.append("a")
            writers["a"].commit(format="parquet", rows=5)
        real_pause(stage)

    monkeypatch.setattr(output_module, "test_pause", pause)
    writers["b"].commit(format="parquet", rows=5)
    monkeypatch.setattr(output_module, "test_pause", real_pause)
    assert order == ["a"]
    assert datakiln.read(url).to_arrow().equals(_table(5, offset=200))  # B's, the last commit
    names = _objects(url)
    assert not [n for n in names if writers["a"].token in n]  # A's part and record went
    datakiln.from_arrow(_table(7)).write(url, rows_per_file=10)  # not refused
    assert datakiln.read(url).to_arrow().equals(_table(7))
    manifest = json.loads(_fs().cat_file(f"{url.removeprefix('s3://')}/_datakiln.json"))
    assert _objects(url) == sorted(["_datakiln.json", f"_datakiln.runs/{manifest['run']}.json",
                                    *(f["path"] for f in manifest["files"])])


def test_a_run_record_deleted_since_the_listing_is_not_a_dead_run(s3_bucket):
    """A record that vanished between listing and reading belongs to a run that ended and
    tidied after itself; taking it for a dead writer deleted a committed output's objects."""
    from datakiln.io.objectstore import RUNS, _runs

    fs = _fs()
    root = f"{s3_bucket.removeprefix('s3://')}/runs"
    fs.pipe_file(f"{root}/{RUNS}/dk0123456789ab.json", b"{half a rec")
    found = _runs(fs, root, [f"{RUNS}/dkfedcba987654.json", f"{RUNS}/dk0123456789ab.json"])
    assert found == {"dk0123456789ab": {}}  # the unreadable one only (a run that never started)


def test_a_missing_bucket_is_named_with_the_fix(s3_bucket, tmp_path):
    runner = CliRunner()
    for extra in ([], ["--rows-per-file", "10"]):  # one object, and a prefix
        source = tmp_path / "t.parquet"
        pq.write_table(_table(20), source)
        out = runner.invoke(app, ["convert", str(source), "s3://dk-no-such-bucket-r1/out.parquet"
                                  if not extra else "s3://dk-no-such-bucket-r1/out", *extra])
        assert out.exit_code == 2, out.output
        assert "create 'dk-no-such-bucket-r1' first" in out.output and "Traceback" not in out.output


def test_an_object_replaced_while_read_is_named_with_the_fix(s3_bucket):
    """A reader that listed an output before another write replaced it gets one clear error
    naming the URL and the fix (read again), not a bare 'The specified key does not exist'."""
    url = f"{s3_bucket}/moving"
    datakiln.from_arrow(_table(300)).write(url, rows_per_file=100)
    first = datakiln.read(url)  # listed (and its footers read) now
    datakiln.from_arrow(_table(300, offset=1)).write(url, rows_per_file=100)  # the parts go
    with pytest.raises(DatakilnError) as gone:
        first.to_arrow()
    text = str(gone.value)
    assert f"{url}/part-00000-" in text and "read the data again" in text
    assert datakiln.read(url).to_arrow().equals(_table(300, offset=1))


def test_a_glob_inside_an_output_reads_only_what_its_manifest_lists(s3_bucket):
    """`s3://.../out/*.parquet` must not pick up the parts of a write in progress (or killed),
    nor those of a first write that never committed."""
    from datakiln.io.objectstore import RemoteOutput

    url = f"{s3_bucket}/globbed"
    datakiln.from_arrow(_table(200)).write(url, rows_per_file=100)
    pending = RemoteOutput(url, directory=True)  # a write that has not committed (or was killed)
    stream = pending.open(pending.path / "part-00000.parquet")
    pq.write_table(_table(50, offset=9000), stream)
    stream.close()
    assert sum(n.endswith(".parquet") for n in _objects(url)) == 3
    assert datakiln.read(f"{url}/*.parquet").to_arrow().equals(_table(200))
    assert datakiln.read(f"{s3_bucket}/glob*/part-*").count() == 200

    fresh = RemoteOutput(f"{s3_bucket}/first", directory=True)  # no manifest yet
    stream = fresh.open(fresh.path / "part-00000.parquet")
    pq.write_table(_table(50), stream)
    stream.close()
    with pytest.raises(SourceNotFoundError, match="matched no files"):
        datakiln.read(f"{s3_bucket}/first/*.parquet").to_arrow()
    pending.discard()
    fresh.discard()

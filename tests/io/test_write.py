import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import ADULT_COLUMNS
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import (
    DatakilnError,
    InvalidArgumentError,
    OutputExistsError,
    SchemaError,
    UnsupportedFormatError,
)
from datakiln.io.write import recover_output

runner = CliRunner()


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


def test_write_errors(tmp_path, monkeypatch):
    ds = datakiln.from_arrow(pa.table({"a": [1]}))
    with pytest.raises(UnsupportedFormatError, match="xlsx"):
        ds.write(tmp_path / "x", format="xlsx")
    with pytest.raises(SchemaError, match="partition_by"):
        ds.write(tmp_path / "x", partition_by=["b"])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credential probing of a cloud VM
    with pytest.raises(DatakilnError, match="s3"):  # no credentials or no such bucket: a message
        ds.write("s3://bucket-datakiln-absent/x.parquet")  # (round trips: tests/io/test_s3.py)


# -- data loss: datakiln replaces only its own output (issue 11, item 1) ----------------------

def _small_csv(path, rows=50, start=0):
    path.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(start, start + rows)))
    return path


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_foreign_files_in_the_output_directory_survive(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "old.parquet").write_bytes(b"PAR1 not datakiln's")
    ds = datakiln.from_arrow(pa.table({"a": [1, 2, 3]}))
    with pytest.raises(OutputExistsError, match="notes.txt"):
        ds.write(out, rows_per_file=2)
    with pytest.raises(OutputExistsError, match="notes.txt"):
        ds.write(out, rows_per_file=2, overwrite=True)
    assert sorted(os.listdir(out)) == ["notes.txt", "old.parquet"]
    assert (out / "notes.txt").read_text() == "mine"
    ds.write(tmp_path / "own", rows_per_file=2)  # datakiln's own output, plus a file dropped in
    (tmp_path / "own" / "README").write_text("keep")
    with pytest.raises(OutputExistsError, match="README"):
        ds.write(tmp_path / "own", rows_per_file=2, overwrite=True)
    assert (tmp_path / "own" / "README").read_text() == "keep"
    with pytest.raises(OutputExistsError, match="is a directory"):  # a file output onto a folder
        ds.write(out)
    assert sorted(os.listdir(out)) == ["notes.txt", "old.parquet"]


def test_cli_convert_into_the_working_directory_deletes_nothing(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    csv = _small_csv(tmp_path / "in.csv")
    monkeypatch.chdir(work)
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(app, ["convert", str(csv), ".", *extra])
        assert result.exit_code != 0 and "thesis.tex" in result.output
    assert os.listdir(work) == ["thesis.tex"] and (work / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"  # even an empty working directory is not swapped away
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = runner.invoke(app, ["convert", str(csv), "."])
    assert result.exit_code != 0 and "working directory" in result.output
    assert os.path.samefile(os.getcwd(), empty)


def test_a_file_datakiln_did_not_write_needs_overwrite(tmp_path):
    ds = datakiln.from_arrow(pa.table({"a": [1, 2, 3]}))
    for name, format in (("t.csv", "csv"), ("t.jsonl", "jsonl"), ("t.parquet", "parquet")):
        foreign = tmp_path / name
        pq.write_table(pa.table({"z": [9]}), foreign) if format == "parquet" else foreign.write_text("z\n9\n")
        before = foreign.read_bytes()
        with pytest.raises(OutputExistsError, match="overwrite=True"):
            ds.write(foreign, format=format)
        assert foreign.read_bytes() == before
        ds.write(foreign, format=format, overwrite=True)
        assert foreign.read_bytes() != before
    ds.write(tmp_path / "t.parquet")  # datakiln's own Parquet file (footer mark): replaced freely
    assert datakiln.read(tmp_path / "t.parquet").to_arrow()["a"].to_pylist() == [1, 2, 3]
    with pytest.raises(OutputExistsError):  # CSV carries no mark: always needs overwrite
        ds.write(tmp_path / "t.csv", format="csv")
    ds.write(tmp_path / "d", rows_per_file=2)
    manifest = json.loads((tmp_path / "d" / "_datakiln.json").read_text())
    assert manifest["datakiln_output"] == 1 and manifest["rows"] == 3
    assert sorted(f["path"] for f in manifest["files"]) == ["part-00000.parquet", "part-00001.parquet"]
    datakiln.from_arrow(pa.table({"a": [7]})).write(tmp_path / "d", rows_per_file=2)  # own: replaced
    assert sorted(os.listdir(tmp_path / "d")) == ["_datakiln.json", "part-00000.parquet"]


def test_the_input_is_never_the_output(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    csv = _small_csv(project / "data.csv")
    original = csv.read_bytes()
    ds = datakiln.read(csv)
    link = tmp_path / "link.csv"
    link.symlink_to(csv)
    for target, kwargs in ((project, {"rows_per_file": 10}), (csv, {"format": "csv"}),
                           (link, {"format": "csv"}), (tmp_path, {"rows_per_file": 10})):
        with pytest.raises(OutputExistsError, match="input"):
            ds.write(target, **kwargs)
        with pytest.raises(OutputExistsError, match="input"):
            ds.write(target, overwrite=True, **kwargs)
    result = runner.invoke(app, ["convert", str(csv), str(project), "--overwrite"])
    assert result.exit_code != 0 and "data.csv" in result.output
    parquet = datakiln.read(csv).write(tmp_path / "p.parquet")
    with pytest.raises(OutputExistsError, match="input"):  # the pipeline verbs check too
        datakiln.split(datakiln.read(parquet.path), (0.5, 0.5), output=tmp_path)
    with pytest.raises(OutputExistsError, match="input"):
        datakiln.balance(datakiln.read(parquet.path), "b", method="random_over", output=parquet.path,
                         overwrite=True)
    assert csv.read_bytes() == original and os.listdir(project) == ["data.csv"]


def test_split_output_is_one_atomic_directory(tmp_path):
    ds = datakiln.from_arrow(pa.table({"a": list(range(100))}))
    first = datakiln.split(ds, (0.5, 0.5), output=tmp_path / "s", seed=1)
    listed = {f["path"] for f in json.loads((tmp_path / "s" / "_datakiln.json").read_text())["files"]}
    assert listed == {"train.parquet", "test.parquet", "split.json"}
    assert json.loads((tmp_path / "s" / "split.json").read_text())["counts"] == first.counts
    datakiln.split(ds, (0.5, 0.5), output=tmp_path / "s", seed=2)  # its own output: replaced
    (tmp_path / "s" / "mine.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="mine.txt"):
        datakiln.split(ds, (0.5, 0.5), output=tmp_path / "s", seed=3)
    assert (tmp_path / "s" / "mine.txt").read_text() == "x"


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale_dir = tmp_path / f".out.tmp-{dead}-0123abcd"
    stale_dir.mkdir()
    (stale_dir / "part-00000.parquet").write_bytes(b"x" * 1000)
    stale_file = tmp_path / f".out.tmp-{dead}-4567abcd"
    stale_file.write_bytes(b"half a file")
    in_use = tmp_path / f".out.tmp-{live}-89abcdef"  # a writer that is still running
    in_use.mkdir()
    keep = [tmp_path / f".other.tmp-{dead}-0123abcd", tmp_path / ".out.tmp-notes",
            tmp_path / "out.tmp-1-0123abcd"]
    for path in keep:
        path.write_text("not ours to delete")
    datakiln.from_arrow(pa.table({"a": [1]})).write(tmp_path / "out", rows_per_file=5)
    assert not stale_dir.exists() and not stale_file.exists()
    assert in_use.exists() and all(p.exists() for p in keep)


def _writer(tmp_path, csv, out, stage, extra_env=()):
    """A `kiln convert` child paused (test hook) at ``stage``; returns it once paused."""
    flag = tmp_path / f"paused-{stage}"
    flag.unlink(missing_ok=True)
    env = {**os.environ, "DATAKILN_TEST_PAUSE_BEFORE_COMMIT": "60", "DATAKILN_TEST_PAUSE_STAGE": stage,
           "DATAKILN_TEST_PAUSE_FLAG": str(flag), **dict(extra_env)}
    child = subprocess.Popen([sys.executable, "-m", "datakiln.cli", "convert", str(csv), str(out),
                              "--rows-per-file", "20"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not flag.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the writer never paused at {stage!r}: {child.stderr.read().decode()[-500:]}")
        time.sleep(0.02)
    return child


def _rows(path):
    return sorted(datakiln.read(path).to_arrow()["a"].to_pylist())


def test_kill_9_at_any_moment_leaves_the_old_output_or_the_new(tmp_path):
    old_csv, new_csv = _small_csv(tmp_path / "old.csv", 30), _small_csv(tmp_path / "new.csv", 70, 1000)
    sources = {p: p.read_bytes() for p in (old_csv, new_csv)}
    out = tmp_path / "out"
    datakiln.read(old_csv).write(out, rows_per_file=20)
    old_rows, new_rows = list(range(30)), list(range(1000, 1070))
    for stage, env in (("write", {}), ("commit", {}), ("swap", {"DATAKILN_TEST_NO_EXCHANGE": "1"})):
        child = _writer(tmp_path, new_csv, out, stage, env)
        child.send_signal(signal.SIGKILL)
        child.wait()
        leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".out.")]
        assert leftovers, stage  # the killed writer left its temporary (or backup) behind
        if stage == "swap":  # no atomic exchange: between the renames only the backup holds it
            assert not out.exists()
            assert recover_output(out) and _rows(out) == old_rows
        assert _rows(out) == old_rows, stage
        assert {p: p.read_bytes() for p in sources} == sources
    datakiln.read(new_csv).write(out, rows_per_file=20)  # the next write tidies up and wins
    assert _rows(out) == new_rows
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.")] == []


def test_every_writing_command_takes_overwrite_and_never_replaces_its_input(tmp_path):
    for command in (["convert"], ["clean"], ["split"], ["balance"], ["synth", "sample"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "--overwrite" in result.output, command
    from datakiln.synth import GaussianCopula

    model = tmp_path / "m.kiln"
    GaussianCopula().fit(pa.table({"a": [float(i) for i in range(50)]})).save(model)
    before = model.read_bytes()
    result = runner.invoke(app, ["synth", "sample", str(model), "-n", "5", "-o", str(model), "--overwrite"])
    assert result.exit_code != 0 and "input" in result.output and model.read_bytes() == before
    csv = _small_csv(tmp_path / "in.csv")
    (tmp_path / "clean.csv").write_text("someone else's\n")
    result = runner.invoke(app, ["clean", str(csv), "-o", str(tmp_path / "clean.csv"), "--to", "csv"])
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert (tmp_path / "clean.csv").read_text() == "someone else's\n"
    result = runner.invoke(app, ["clean", str(csv), "-o", str(tmp_path / "clean.csv"), "--to", "csv",
                                 "--overwrite"])
    assert result.exit_code == 0, result.output
    assert datakiln.read(tmp_path / "clean.csv").count() == 50


def test_the_output_mark_is_not_carried_into_tables_read(tmp_path):
    table = pa.table({"a": [1, 2, 3]}).replace_schema_metadata({"note": "kept"})
    datakiln.from_arrow(table).write(tmp_path / "own.parquet")
    assert b"datakiln.output" in pq.read_metadata(tmp_path / "own.parquet").metadata
    back = datakiln.read(tmp_path / "own.parquet").to_arrow()
    assert b"datakiln.output" not in (back.schema.metadata or {})
    # a footer without the stored Arrow schema (other writers, older pyarrow) puts every key
    # into the schema read: the mark must still stay out, and other keys stay in
    writer = pq.ParquetWriter(tmp_path / "bare.parquet", table.schema, store_schema=False)
    writer.write_table(table)
    writer.add_key_value_metadata({"datakiln.output": '{"version": 1}', "origin": "elsewhere"})
    writer.close()
    for read in (lambda d: d.to_arrow(), lambda d: next(iter(d.iter_batches())),
                 lambda d: d.select(["a"]).to_arrow()):
        metadata = read(datakiln.read(tmp_path / "bare.parquet")).schema.metadata or {}
        assert b"datakiln.output" not in metadata and metadata.get(b"origin") == b"elsewhere"
    # so a table read from datakiln's output and written by pyarrow is not taken for datakiln's
    pq.write_table(datakiln.read(tmp_path / "bare.parquet").to_arrow(), tmp_path / "mine.parquet")
    with pytest.raises(OutputExistsError, match="did not write"):
        datakiln.from_arrow(table).write(tmp_path / "mine.parquet")
    assert pq.read_table(tmp_path / "mine.parquet").num_rows == 3


def test_an_output_named_for_one_format_never_holds_another(tmp_path):
    """kiln synth sample -o s.csv wrote Parquet bytes into s.csv (exit 0), kiln clean and
    kiln balance -o x.csv did the same and then failed re-reading their own output."""
    import pyarrow.csv as pacsv

    table = pa.table({"x": [i + 0.5 for i in range(40)], "y": ["a", "a", "a", "b"] * 10})
    data = tmp_path / "in.parquet"
    pq.write_table(table, data)
    runner = CliRunner()
    model = tmp_path / "m.kiln"
    runs = [
        (["clean", data, "-o", tmp_path / "c.csv"], tmp_path / "c.csv"),
        (["balance", data, "-o", tmp_path / "b.csv", "--target", "y", "--method", "random_over"],
         tmp_path / "b.csv"),
        (["synth", "fit", data, "-o", model], None),
        (["synth", "sample", model, "-n", "20", "-o", tmp_path / "s.csv"], tmp_path / "s.csv"),
    ]
    for args, written in runs:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        if written is not None:  # a real CSV: the ending chose the format
            assert pacsv.read_csv(written).num_rows >= 20
    ds = datakiln.read(data)
    ds.write(tmp_path / "w.jsonl")
    assert json.loads((tmp_path / "w.jsonl").read_text().splitlines()[0]) == {"x": 0.5, "y": "a"}
    with pytest.raises(InvalidArgumentError, match=r"ends in \.csv.*format='csv'"):
        ds.write(tmp_path / "p.csv", format="parquet")
    with pytest.raises(InvalidArgumentError, match="compressed"):
        ds.write(tmp_path / "p.csv.gz")
    with pytest.raises(InvalidArgumentError, match="reads but does not write"):
        ds.write(tmp_path / "p.tsv")  # comma-separated text, or Parquet bytes, in a .tsv
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.csv.gz").exists()


def test_a_file_of_datakilns_output_edited_by_hand_is_never_replaced(tmp_path):
    """A split file rewritten by the user (new size) counted as datakiln's own, so re-running
    the split silently deleted the edit; now it is refused like any foreign file."""
    data = datakiln.from_arrow(pa.table({"x": list(range(200))}))
    out = tmp_path / "splits"
    datakiln.split(data, output=out, seed=1)
    datakiln.split(data, output=out, seed=2)  # untouched: its own output, replaced
    edited = pa.table({"x": [1, 2, 3], "note": ["mine"] * 3})
    pq.write_table(edited, out / "train.parquet")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match=r"train\.parquet \(changed since datakiln wrote it\)"):
            datakiln.split(data, output=out, seed=3, overwrite=overwrite)
    assert pq.read_table(out / "train.parquet").equals(edited)


def test_a_fifo_output_is_refused_even_with_overwrite(tmp_path):
    # the temp-file-and-rename commit replaced the node: `kiln clean ... -o /dev/full --to csv
    # --overwrite` turned /dev/full into a regular file (run as root)
    import os
    import stat

    from datakiln.errors import OutputExistsError
    from datakiln.synth import GaussianCopula

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    table = pa.table({"a": [1.0, 2.0, 3.0] * 20})
    with pytest.raises(OutputExistsError, match="is a FIFO \\(named pipe\\), not a regular file"):
        datakiln.from_arrow(table).write(fifo, format="csv", overwrite=True)
    with pytest.raises(OutputExistsError, match="is a FIFO"):
        GaussianCopula().fit(table).save(fifo, overwrite=True)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # (never test on a real device: a regression
    # would replace it for the whole machine)


def test_an_output_inside_an_input_directory_is_refused(tmp_path):
    """kiln convert data data/out wrote into the directory it read: the next read of data/
    counted every row twice (803 rows became 1,606)."""
    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.table({"x": list(range(50))}), folder / "a.parquet")
    ds = datakiln.read(folder)
    for target in (folder / "out", folder / "clean.parquet", folder / "deep" / "x.parquet"):
        with pytest.raises(OutputExistsError, match="inside the input directory"):
            ds.write(target, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"] and datakiln.read(folder).count() == 50
    datakiln.read(folder / "a.parquet").write(folder / "copy.parquet")  # beside a file input: fine

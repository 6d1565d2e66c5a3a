"""A writer SIGKILLed while it writes to s3:// leaves no visible partial dataset.

A child process writes a multi-object dataset to the moto server and is killed (SIGKILL) at
a test-only pause (``DATAKILN_TEST_PAUSE_*``, see :mod:`datakiln.io._output`): mid-write
(parts uploaded, one in flight) or just before the manifest's PUT (every part uploaded).
Readers must then see the old dataset, or nothing where there was none, never a part; the
next write must delete the killed write's objects and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from tests.conftest import IN_CI

import datakiln
from datakiln.errors import SourceNotFoundError
from datakiln.io.objectstore import RUNS, recover_remote

s3fs = pytest.importorskip("s3fs") if not IN_CI else __import__("s3fs")  # CI: a failure, not a skip

REPO = Path(__file__).resolve().parents[2]
_CHILD = """
import sys
import pyarrow as pa
import datakiln
url, rows, offset, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
table = pa.table({"id": pa.array(range(offset, offset + rows), pa.int64())})
tables = [table.slice(i, 400) for i in range(0, rows, 400)]
datakiln.from_arrow(pa.concat_tables(tables)).write(url, rows_per_file=per or None)
"""


def _table(rows: int, offset: int) -> pa.Table:
    return pa.table({"id": pa.array(range(offset, offset + rows), pa.int64())})


def _objects(url: str) -> list[str]:
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    root = url.removeprefix("s3://")
    return sorted(p[len(root) + 1:] for p in fs.find(root))


def _kill_child_at(url: str, stage: str, tmp_path: Path, rows: int = 1200, offset: int = 10_000,
                   rows_per_file: int = 100) -> None:
    """Run the child writer and SIGKILL it when it reaches the pause ``stage``."""
    flag = tmp_path / f"paused-{stage}"
    env = {**os.environ, "DATAKILN_TEST_PAUSE_BEFORE_COMMIT": "120", "DATAKILN_TEST_PAUSE_STAGE": stage,
           "DATAKILN_TEST_PAUSE_FLAG": str(flag)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url, str(rows), str(offset),
                              str(rows_per_file)], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not flag.exists():
            if child.poll() is not None:
                pytest.fail(f"the writer ended before its pause: {child.stdout.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the writer never reached its pause")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _committed(url: str) -> list[str]:
    """The manifest's objects and the record of the run that committed it (kept, marked)."""
    fs = s3fs.S3FileSystem()
    manifest = json.loads(fs.cat_file(f"{url.removeprefix('s3://')}/_datakiln.json"))
    return sorted([f"{RUNS}/{manifest['run']}.json", *(f["path"] for f in manifest["files"])])


@pytest.mark.parametrize("stage", ["write", "commit"])
def test_killed_writer_leaves_the_old_dataset_and_the_next_write_tidies(s3_bucket, tmp_path, stage):
    url = f"{s3_bucket}/events"
    old = _table(500, offset=0)
    datakiln.from_arrow(old).write(url, rows_per_file=200)
    before = _objects(url)

    _kill_child_at(url, stage, tmp_path)
    after_kill = _objects(url)
    left = [n for n in after_kill if n not in before]
    parts = [n for n in left if n.startswith("part-")]
    assert parts, "the killed writer had uploaded no part: the test proves nothing"
    if stage == "commit":  # every part of the new dataset was uploaded, only the manifest missing
        assert len(parts) == 12
    assert any(n.startswith(f"{RUNS}/") for n in left)  # its run was recorded before its parts

    assert datakiln.read(url).to_arrow().equals(old)  # the old dataset, whole, never a part
    assert datakiln.read(url).count() == 500

    new = _table(300, offset=50_000)
    datakiln.from_arrow(new).write(url, rows_per_file=100)
    final = _objects(url)
    assert final == sorted(["_datakiln.json", *_committed(url)])  # killed parts and old parts gone
    assert not set(final) & set(parts)
    assert datakiln.read(url).to_arrow().equals(new)


def test_killed_first_write_shows_nothing_and_recover_removes_only_its_objects(s3_bucket, tmp_path):
    url = f"{s3_bucket}/fresh"
    fs = s3fs.S3FileSystem()
    _kill_child_at(url, "write", tmp_path)
    parts = [n for n in _objects(url) if n.startswith("part-")]
    assert parts
    with pytest.raises(SourceNotFoundError, match="no data files"):
        datakiln.read(url).to_arrow()  # nothing committed: nothing read, not the parts

    fs.pipe_file(f"{url.removeprefix('s3://')}/notes.txt", b"someone else's")  # foreign, inside
    done = recover_remote(url)
    assert len(done) == 1 and f"removed {len(parts)} object(s)" in done[0]
    assert _objects(url) == ["notes.txt"]  # only the killed run's objects and record went


def test_killed_single_object_write_keeps_the_old_object(s3_bucket, tmp_path):
    url = f"{s3_bucket}/one.parquet"
    old = _table(100, offset=0)
    datakiln.from_arrow(old).write(url)
    _kill_child_at(url, "commit", tmp_path, rows=5000, rows_per_file=0)  # 0: one object
    assert datakiln.read(url).to_arrow().equals(old)
    assert _objects(s3_bucket) == ["one.parquet"]


def test_which_writers_count_as_gone():
    import socket

    from datakiln.io.objectstore import STALE_AFTER_S, _process_start, _writer_gone

    now, host, parent = time.time(), socket.gethostname(), os.getppid()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = {"host": host, "pid": parent, "started": _process_start(parent),
            "heartbeat": now - 10 * STALE_AFTER_S}
    assert not _writer_gone(live)  # alive here: never taken for dead, however old its heartbeat
    assert _writer_gone({**live, "started": (live["started"] or 0) + 1})  # its pid names another process
    assert _writer_gone({**live, "pid": dead.pid})  # the process is gone
    elsewhere = {"host": f"not-{host}", "pid": parent, "heartbeat": now - 60}
    assert not _writer_gone(elsewhere)  # another machine, recent heartbeat
    assert _writer_gone({**elsewhere, "heartbeat": now - STALE_AFTER_S - 60})
    assert _writer_gone({})  # a record that never got written whole


def test_a_writer_gone_after_its_manifest_keeps_its_output(s3_bucket):
    """Killed between its manifest's PUT and the tidying: its output stands, the objects it
    replaced go, and its record is marked committed (kept while its manifest is current)."""
    url = f"{s3_bucket}/late"
    root = url.removeprefix("s3://")
    fs = s3fs.S3FileSystem()
    datakiln.from_arrow(_table(30, offset=0)).write(url, rows_per_file=10)
    old = [n for n in _objects(url) if n.startswith("part-")]
    new = _table(20, offset=500)
    datakiln.from_arrow(new).write(url, rows_per_file=10)
    manifest = json.loads(fs.cat_file(f"{root}/_datakiln.json"))
    for name in old:  # as if the tidying never ran: the replaced parts are still there
        fs.pipe_file(f"{root}/{name}", b"replaced")
    record = {"run": manifest["run"], "host": "a-host-long-gone", "pid": 1, "heartbeat": 0.0,
              "replacing": old}
    fs.pipe_file(f"{root}/{RUNS}/{manifest['run']}.json", json.dumps(record).encode())
    done = recover_remote(url)
    assert done == [f"removed 3 object(s) replaced by the write {manifest['run']}"]
    assert _objects(url) == sorted(["_datakiln.json", *_committed(url)])
    assert datakiln.read(url).to_arrow().equals(new)
    kept = json.loads(fs.cat_file(f"{root}/{RUNS}/{manifest['run']}.json"))
    assert kept["committed"] is True
    assert recover_remote(url) == []  # nothing left to do, and said once

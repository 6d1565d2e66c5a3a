"""read_stream over lines: a growing JSONL/CSV file (follow=True), standard input and a FIFO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datakiln
from datakiln.cli.app import app
from datakiln.errors import InvalidArgumentError, UnsupportedFormatError


def later(delay: float, fn) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    thread.start()
    return thread


def test_follow_a_growing_jsonl_file_waits_for_whole_lines(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')

    def grow() -> None:
        with path.open("ab") as handle:
            handle.write(b'{"a": 3, "b": "z"}\n{"a": 4,')  # the last line is half written
            handle.flush()
            time.sleep(0.3)
            handle.write(b' "b": "w"}\n')

    writer = later(0.2, grow)
    stream = datakiln.read_stream(path, follow=True, max_wait_ms=100, with_ids=True)
    got = [r for b in stream.iter_batches(idle_timeout_s=1.0) for r in b.to_pylist()]
    writer.join()
    assert [(r["a"], r["b"]) for r in got] == [(1, "x"), (2, "y"), (3, "z"), (4, "w")]
    assert [int(r["_message_id"]) for r in got] == [0, 19, 38, 57]  # byte offsets of the lines
    assert stream.source.offset == path.stat().st_size


def test_follow_csv_from_latest_and_after_truncation(tmp_path: Path):
    path = tmp_path / "rows.csv"
    path.write_text("id,score\n1,0.5\n2,0.25\n")
    stream = datakiln.read_stream(str(path), follow=True, start="latest", max_wait_ms=50)
    later(0.2, lambda: path.open("a").write("3,0.75\n")).join()
    first = [r for b in stream.iter_batches(idle_timeout_s=0.5) for r in b.to_pylist()]
    assert first == [{"id": 3, "score": 0.75}]  # only what came after start, header still known
    path.write_text("id,score\n9,1.5\n")  # rotated: shorter than what was read
    again = [r for b in stream.iter_batches(idle_timeout_s=0.5) for r in b.to_pylist()]
    assert again == [{"id": 9, "score": 1.5}]


def test_a_plain_file_without_follow_and_read_of_a_stream_are_refused(tmp_path: Path):
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    with pytest.raises(InvalidArgumentError, match="follow=True"):
        datakiln.read_stream(path)
    for stream in ("-", "redis://127.0.0.1:6379/0?stream=x", "nats://127.0.0.1:4222?stream=X"):
        with pytest.raises(UnsupportedFormatError, match="read_stream"):
            datakiln.read(stream)  # a stream is not a file: the error names the right call


def test_standard_input_is_a_stream_that_ends_at_eof():
    script = ("import datakiln\n"
              "s = datakiln.read_stream('-', batch_size=2)\n"
              "print([b.num_rows for b in s.iter_batches()], s.stats.messages)\n")
    lines = "".join(json.dumps({"v": i}) + "\n" for i in range(5)) + "\n"
    done = subprocess.run([sys.executable, "-c", script], input=lines, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2, 2, 1] 5"


def test_a_fifo_is_reopened_for_the_next_writer(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def writers() -> None:
        for start in (0, 3):
            with fifo.open("w") as handle:
                handle.write("".join(json.dumps({"v": start + i}) + "\n" for i in range(3)))
            time.sleep(0.2)

    thread = later(0.1, writers)
    stream = datakiln.read_stream(str(fifo), max_wait_ms=50)
    got = [r["v"] for b in stream.iter_batches(idle_timeout_s=1.5) for r in b.to_pylist()]
    stream.close()
    thread.join()
    assert got == list(range(6))


def test_cli_stream_inspect_prints_window_statistics(tmp_path: Path):
    path = tmp_path / "live.jsonl"
    path.write_text("".join(json.dumps({"age": 20 + i % 50, "city": "Lyon" if i % 2 else "Oslo"}) + "\n"
                            for i in range(400)))
    result = CliRunner().invoke(app, ["stream", "inspect", str(path), "--start", "earliest",
                                      "--idle-timeout", "0.3", "--window-rows", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["seen"] == 400 and report["window_rows"] == 100
    columns = {c["name"]: c for c in report["profile"]["columns"]}
    expected = [20 + i % 50 for i in range(300, 400)]
    assert columns["age"]["mean"] == pytest.approx(sum(expected) / 100)
    assert columns["city"]["distinct"] == 2

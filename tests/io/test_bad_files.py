"""Broken and hostile input files through the API: a DatakilnError naming the file, never a
raw exception, a hang or a partial output.

The fixture builders are plain module-level functions ``make_<case>(tmp_path) -> Path`` listed
in :data:`FILE_CASES`, so the CLI's bad-input test can feed the same files to ``kiln``.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import datakiln
from datakiln.errors import (
    DatakilnError,
    EmptySourceError,
    EncodingError,
    ParseError,
    SchemaError,
    UnsupportedFormatError,
)


def _rows(n: int) -> bytes:
    return b"id,name,score\n" + b"".join(b"%d,name%d,%d.5\n" % (i, i, i % 97) for i in range(n))


def make_fake_gz(tmp_path: Path) -> Path:
    """Plain text named ``.csv.gz``."""
    path = tmp_path / "fake.csv.gz"
    path.write_bytes(_rows(10))
    return path


def make_truncated_gz(tmp_path: Path) -> Path:
    """A gzip file cut short after its first kilobytes (an interrupted download)."""
    path = tmp_path / "truncated.csv.gz"
    whole = gzip.compress(_rows(200_000), compresslevel=1)
    path.write_bytes(whole[: len(whole) * 3 // 5])
    return path


def make_fifo(tmp_path: Path) -> Path:
    """A named pipe with no writer: opening it would block forever."""
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


def make_unclosed_quote_last_line(tmp_path: Path) -> Path:
    """The last line opens a quote that never closes."""
    path = tmp_path / "open_quote.csv"
    path.write_bytes(b'a,b\n1,x\n2,"y\n')
    return path


def make_unclosed_quote_middle(tmp_path: Path) -> Path:
    """A quote opened on line 3 would swallow the following lines into one value."""
    path = tmp_path / "open_quote_mid.csv"
    path.write_bytes(b'a,b\n1,x\n2,"y\n3,z\n4,w\n')
    return path


def make_jsonl_bad_line(tmp_path: Path) -> Path:
    """Line 4 of a JSON Lines file is not JSON."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": \n{"a": 5}\n')
    return path


def make_jsonl_fake_gz(tmp_path: Path) -> Path:
    """Plain JSON Lines named ``.jsonl.gz``."""
    path = tmp_path / "fake.jsonl.gz"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    return path


def make_jsonl_type_change(tmp_path: Path) -> Path:
    """A number field that becomes an object on line 3."""
    path = tmp_path / "changes.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": {"b": 1}}\n')
    return path


def make_json_array_not_objects(tmp_path: Path) -> Path:
    """A JSON array whose second item is a number."""
    path = tmp_path / "array.json"
    path.write_text(json.dumps([{"a": 1}, 2, {"a": 3}]))
    return path


def make_empty_csv(tmp_path: Path) -> Path:
    """A zero-byte CSV file."""
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def make_binary_as_csv(tmp_path: Path) -> Path:
    """Random bytes named ``.csv``."""
    path = tmp_path / "noise.csv"
    path.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(4096)))
    return path


def make_corrupt_parquet(tmp_path: Path) -> Path:
    """Text named ``.parquet``."""
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    return path


def make_not_arrow(tmp_path: Path) -> Path:
    """Text named ``.arrow``."""
    path = tmp_path / "not.arrow"
    path.write_bytes(b"a,b\n1,2\n")
    return path


#: case name -> builder; each file must make every reading command fail with a clear error
FILE_CASES = {
    "fake_gz": make_fake_gz,
    "truncated_gz": make_truncated_gz,
    "fifo": make_fifo,
    "unclosed_quote_last_line": make_unclosed_quote_last_line,
    "unclosed_quote_middle": make_unclosed_quote_middle,
    "jsonl_bad_line": make_jsonl_bad_line,
    "jsonl_fake_gz": make_jsonl_fake_gz,
    "jsonl_type_change": make_jsonl_type_change,
    "json_array_not_objects": make_json_array_not_objects,
    "empty_csv": make_empty_csv,
    "binary_as_csv": make_binary_as_csv,
    "corrupt_parquet": make_corrupt_parquet,
    "not_arrow": make_not_arrow,
}

#: case name -> (error class, a pattern the message must match besides the file name)
EXPECTED = {
    "fake_gz": (ParseError, r"cannot be decompressed as gzip.*rename it without the '\.gz'"),
    "truncated_gz": (ParseError, r"cannot be decompressed as gzip.*truncated or corrupt"),
    "fifo": (UnsupportedFormatError, r"is a FIFO \(named pipe\), not a regular file.*stream"),
    "unclosed_quote_last_line": (ParseError, r"line 3: a quoted value is not closed"),
    "unclosed_quote_middle": (ParseError, r"line 3: a quoted value is not closed"),
    "jsonl_bad_line": (ParseError, r"line 4\b.*on_bad_rows='skip'"),
    "jsonl_fake_gz": (ParseError, r"cannot be decompressed as gzip"),
    "jsonl_type_change": (SchemaError, r"line 3\b"),
    "json_array_not_objects": (ParseError, r"must be objects"),
    "empty_csv": (EmptySourceError, r"is empty"),
    "binary_as_csv": (EncodingError, r"not valid utf-8"),
    "corrupt_parquet": (ParseError, r"parquet"),
    "not_arrow": (ParseError, r"not an Arrow IPC file"),
}


def test_every_case_has_an_expectation():
    assert set(EXPECTED) == set(FILE_CASES)


@contextmanager
def unblocked(path: Path, after_s: float = 5.0) -> Iterator[None]:
    """Guard a test on a FIFO: should a reader block opening it (the bug), a writer opens it
    after ``after_s`` seconds so the test fails instead of hanging."""
    done = threading.Event()

    def writer() -> None:
        if done.wait(after_s) or not path.exists() or path.is_file():
            return
        while not done.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # no reader yet
                if exc.errno != errno.ENXIO:
                    return
                done.wait(0.05)
                continue
            os.write(fd, b"a,b\n1,2\n")
            os.close(fd)
            return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_file_gives_a_clear_error_and_no_output(case, tmp_path):
    source = FILE_CASES[case](_folder(tmp_path))
    error, pattern = EXPECTED[case]
    out = tmp_path / "out"
    with unblocked(source), pytest.raises(error, match=pattern) as caught:
        datakiln.read(source).write(out, rows_per_file=1000)
    assert isinstance(caught.value, DatakilnError)
    assert source.name in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no temp files either


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def test_a_late_gzip_error_is_blamed_on_the_input_not_the_output(tmp_path):
    """The start of the truncated file reads fine; the error comes while converting."""
    source = make_truncated_gz(_folder(tmp_path))
    dataset = datakiln.read(source)
    assert dataset.columns == ["id", "name", "score"]
    with pytest.raises(ParseError, match="truncated.csv.gz") as caught:
        dataset.write(tmp_path / "out", rows_per_file=1000)
    assert str(tmp_path / "out") not in str(caught.value)
    assert not isinstance(caught.value, OSError)  # not a WriteError about the output
    assert not (tmp_path / "out").exists()


def test_json_array_nested_thousands_deep_is_a_parse_error(tmp_path):
    # Python's JSON decoder raised RecursionError (an internal error in kiln inspect)
    path = tmp_path / "deep.json"
    path.write_text('[{"a": 1}, {"a": ' + "[" * 100_000 + "]" * 100_000 + "}]")
    with pytest.raises(ParseError, match=r"deep\.json': item 2 of the array is nested too deeply"):
        datakiln.read(path).to_arrow()

"""Property-based fuzz of the CSV reader: any bytes give a table or a DatakilnError, never
another exception; well-formed CSV written by the csv module reads back value for value."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datakiln
from datakiln.errors import DatakilnError

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

#: pieces that stress a CSV reader: delimiters, quotes, line ends, a BOM, NUL, numbers
PIECES = st.sampled_from([",", ";", "\t", "|", '"', '""', "'", "\n", "\r\n", "\r", " ",
                          "\ufeff", "\x00", "\\", "1", "-2.5", "1e308", "NaN", "?", "NA",
                          "a", "é", "名", "true", "2024-01-31", ""])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=60).map("".join)


def _attempt(path: Path, **options: object) -> None:
    """Read ``path`` every way a user can; only DatakilnError may escape."""
    try:
        ds = datakiln.read(path, **options)
        table = ds.to_arrow()
        streamed = sum(b.num_rows for b in ds.iter_batches())
        assert streamed == table.num_rows
        assert table.column_names == ds.columns
    except DatakilnError as exc:
        assert str(exc)  # a message, one that names the file when it is about the file
    # anything else propagates and fails the test


@FUZZ
@given(data=st.binary(max_size=600), gz=st.booleans(), skip=st.booleans())
def test_arbitrary_bytes_read_or_raise_a_datakiln_error(tmp_path_factory, data, gz, skip):
    path = tmp_path_factory.mktemp("fuzz") / ("t.csv.gz" if gz else "t.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    _attempt(path, on_bad_rows="skip" if skip else "error")


@FUZZ
@given(text=TEXT, block=st.sampled_from([16, 64, 1 << 20]), skip=st.booleans(),
       header=st.sampled_from([None, True, False]))
def test_csv_like_text_reads_or_raises_a_datakiln_error(tmp_path_factory, text, block, skip,
                                                        header):
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _attempt(path, block_bytes=block, header=header, on_bad_rows="skip" if skip else "error")


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
               max_size=10)


@FUZZ
@given(rows=st.lists(st.tuples(CELL, CELL, st.integers(-10**12, 10**12)), min_size=1,
                     max_size=40),
       delimiter=st.sampled_from([",", ";", "\t", "|"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       bom=st.booleans(), gz=st.booleans(), final_newline=st.booleans(),
       block=st.sampled_from([32, 1 << 20]))
def test_well_formed_csv_round_trips(tmp_path_factory, rows, delimiter, quoting, bom, gz,
                                     final_newline, block):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\n")
    writer.writerow(["left", "right", "n"])
    writer.writerows(rows)
    data = ("\ufeff" if bom else "") + buffer.getvalue()
    if not final_newline:
        data = data[:-1]
    raw = data.encode("utf-8")
    path = tmp_path_factory.mktemp("round") / ("t.csv.gz" if gz else "t.csv")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    ds = datakiln.read(path, delimiter=delimiter, header=True, trim=False, na_values=[],
                       column_types={"left": "string", "right": "string", "n": "int64"},
                       block_bytes=block)
    table = ds.to_arrow()
    assert table.column_names == ["left", "right", "n"]
    assert table.to_pydict() == {"left": [r[0] for r in rows], "right": [r[1] for r in rows],
                                 "n": [r[2] for r in rows]}
    assert ds.stats["bad_rows"] == 0

"""What the CSV reader does with rows Arrow cannot take, or takes wrongly.

Arrow reports a bad row by its number inside a block; these methods find its line in the
file, turn Arrow's message into a datakiln error with the fix, and catch what Arrow lets
through silently: a quote left open at the end of a line, which runs the value on into the
following lines (without ``newlines_in_values=True`` no value holds a line break).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import EncodingError, ParseError, SchemaError, SourceError
from datakiln.io._lines import find_line, first_bad_encoding_line, line_at, line_start, unclosed_quote

__all__ = ["CsvErrorsMixin", "open_quote_row"]


class CsvErrorsMixin:
    """Bad-row handling of :class:`~datakiln.io.csv.CsvSource` (which sets the attributes)."""

    dialect: Any
    encoding: str
    escapechar: str | None
    newlines_in_values: bool
    on_bad_rows: str
    block_bytes: int
    names: list[str]
    stats: Any
    _open: Any

    def _merged_lines(self, table: pa.Table, lines: int | None, skip_header: bool,
                      skipped: list[str]) -> bool:
        """Whether a quote left open merged lines into a value. Without line breaks in
        values every line is a row, so the cheap test is counting: fewer rows than newlines
        (or a line break in the last value: the last newline swallowed) needs a look at the
        values, which also clears blank lines (rows Arrow drops) of suspicion."""
        if self.newlines_in_values or lines is None:
            return False
        if any("\n" in text or "\r" in text for text in skipped):
            return True  # a merged row with a wrong field count, skipped
        suspect = table.num_rows + int(skip_header) + len(skipped) != lines or (
            table.num_rows > 0 and open_quote_row(table.slice(table.num_rows - 1)) is not None)
        return suspect and open_quote_row(table) is not None

    def _drop_open_quote(self, data: bytes, encoding: str, where: str, offset: int,
                         removed: list[tuple[int | None, str]]) -> bytes:
        """``data`` without the line whose quote never closes; raises unless skipping."""
        text = data.decode(encoding, "replace")
        line = unclosed_quote(text, self.dialect.delimiter, self.dialect.quotechar,
                              self.escapechar)
        lines = data.split(b"\n")
        if line is None or line > len(lines):
            raise ParseError(f"{where!r}: a quoted value runs over a line break; fix the "
                             "quoting, or pass newlines_in_values=True if values hold line "
                             "breaks")
        start = sum(len(part) + 1 for part in lines[:line - 1])
        raw = lines[line - 1].decode(encoding, "replace").rstrip("\r")
        number = line_at(self._open, where, offset + start) if offset else line
        if self.on_bad_rows == "error":
            raise ParseError(
                f"{where!r} line {number}: a quoted value is not closed before the end of the "
                f"line: {raw[:200]!r}; close the quote (write a quote inside a value as two "
                "quotes), pass on_bad_rows='skip' to skip and count such rows, or "
                "newlines_in_values=True if quoted values hold line breaks")
        removed.append((number, raw))
        return b"\n".join(lines[:line - 1] + lines[line:])

    def _locate_skipped(self, where: str, data: bytes | None, offset: int) -> None:
        """Fill in line numbers of skipped-row examples found in this chunk (or file)."""
        for example in self.stats.examples:
            if example["line"] is None and example["file"] == where:
                needle = str(example["text"]).encode("utf-8", "replace")
                if data is None or line_start(data, needle) >= 0:
                    example["line"] = find_line(self._open, where, str(example["text"]), data,
                                                 offset)

    def _translate(self, exc: Exception, where: str, data: bytes | None, offset: int,
                   bad: list[tuple[Any, ...]]) -> SourceError:
        """Turn an Arrow parse error into a datakiln error naming the file and line."""
        message = str(exc)
        if "UTF8" in message and "invalid" in message:
            line = first_bad_encoding_line(where, self._open)
            return EncodingError(
                f"{where!r} line {line}: text is not valid {self.encoding}; pass the file's "
                "encoding, e.g. encoding='latin-1'")
        if "CSV parse error" in message and bad:
            _, text, actual, expected = bad[0]  # Arrow's row number is per block: locate it
            if data is not None and not self.newlines_in_values and (
                    "\n" in text or "\r" in text):
                try:  # the row ran over a line break: a quote left open is the cause
                    self._drop_open_quote(data, self.encoding, where, offset, [])
                except ParseError as error:
                    return error
            line = find_line(self._open, where, text, data, offset)
            return ParseError(
                f"{where!r} line {line}: expected {expected} fields, found {actual}: {text!r}; "
                "fix the row, or pass on_bad_rows='skip' to skip and count such rows")
        if "straddl" in message:
            return ParseError(
                f"{where!r} has a line longer than the block Arrow parses at a time (block_bytes="
                f"{self.block_bytes:,}); pass block_bytes= larger than its longest line")
        match = re.search(r"In CSV column #(\d+): (.*)", message)
        if match:
            column = self.names[int(match.group(1))]
            return SchemaError(
                f"{where!r} column {column!r}: {match.group(2)}; its type was inferred from the "
                f"first rows of the file; pass column_types={{{column!r}: 'string'}} (or the "
                "right type) to read it")
        return ParseError(f"{where!r}: {message}")


def open_quote_row(table: pa.Table) -> int | None:
    """Index of the first row with a line break in a text value, or ``None``."""
    first = None
    for column in table.columns:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        for needle in ("\n", "\r"):
            hits = pc.match_substring(column, needle)
            if pc.any(hits).as_py():
                index = pc.index(hits, True).as_py()
                first = index if first is None else min(first, index)
    return first

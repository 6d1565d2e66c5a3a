"""Line numbers and raw text of bad rows, for error messages of the text readers.

Parsing runs in Arrow over byte ranges, so a failing row is known only by its text or by
its position inside one range. These helpers turn that into "file line N" (1-based) by
searching and counting newlines; they run on the error path only, so they may read the
file again.
"""

from __future__ import annotations

import codecs
import csv as pycsv
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["find_line", "first_bad_encoding_line", "line_at", "line_start",
           "split_line", "unclosed_quote"]

_SCAN_BLOCK = 16 * 1024 * 1024
Opener = Callable[[str], Any]


def line_start(data: bytes, needle: bytes, start: int = 0) -> int:
    """Offset in ``data`` of the first whole line equal to ``needle`` (-1 when absent)."""
    position = start
    while True:
        found = data.find(needle, position)
        if found < 0:
            return -1
        before_ok = found == 0 or data[found - 1:found] == b"\n"
        after = data[found + len(needle):found + len(needle) + 1]
        if before_ok and after in (b"", b"\n", b"\r"):
            return found
        position = found + 1


def line_at(opener: Opener, path: str, position: int) -> int:
    """1-based line of ``path`` holding byte ``position`` (of the decompressed stream)."""
    lines, seen = 1, 0
    with opener(path) as stream:
        while seen < position:
            block = stream.read(min(_SCAN_BLOCK, position - seen))
            if not block:
                break
            lines += block.count(b"\n")
            seen += len(block)
    return lines


def find_line(opener: Opener, path: str, text: str, data: bytes | None, offset: int) -> int | None:
    """1-based line of the first line of ``path`` equal to ``text`` (error path only)."""
    needle = text.encode("utf-8", "replace")
    found = line_start(data, needle) if data is not None else -1
    if found >= 0:
        position = offset + found
    else:
        with opener(path) as stream:
            whole = stream.read()  # only reached when a chunk did not hold the row
        position = line_start(whole, needle)
        if position < 0:
            return None
    return line_at(opener, path, position)


def first_bad_encoding_line(path: str, opener: Opener) -> int | None:
    """1-based line of the first bytes of ``path`` that are not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with opener(path) as stream:
        while True:
            block = stream.read(_SCAN_BLOCK)
            if not block:
                return None
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return lines + block[: max(exc.start, 0)].count(b"\n")
            lines += block.count(b"\n")


def split_line(line: str, delimiter: str, quotechar: str | None) -> list[str]:
    """Fields of one line, also when the csv module refuses it (a field over its 128 kB
    limit, a NUL byte): then a quote-aware regular expression splits it. ``quotechar=None``
    means no quoting (a quote is an ordinary character)."""
    if quotechar is None:
        return line.split(delimiter)
    try:
        return next(pycsv.reader([line], delimiter=delimiter, quotechar=quotechar), [])
    except pycsv.Error:
        d, q = re.escape(delimiter), re.escape(quotechar)
        field = re.compile(f"{q}(?:[^{q}]|{q}{q})*(?:{q}|$)|[^{d}]*")
        fields, position = [], 0
        while True:
            match = field.match(line, position)
            value = match.group(0) if match else ""
            if value.startswith(quotechar):
                value = value[1:-1 if value.endswith(quotechar) and len(value) > 1 else None]
                value = value.replace(quotechar * 2, quotechar)
            fields.append(value)
            position = match.end() if match else len(line)
            if position >= len(line) or line[position] != delimiter:
                return fields
            position += 1


def _records(lines: Iterator[str], delimiter: str, quotechar: str,
             escapechar: str | None) -> Iterator[tuple[int, list[str] | None]]:
    """(first line, fields) per record; fields is ``None`` where the csv module gives up."""
    reader = pycsv.reader(lines, delimiter=delimiter, quotechar=quotechar, escapechar=escapechar)
    done = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except pycsv.Error:
            yield done + 1, None
            return
        yield done + 1, fields
        done = reader.line_num


def unclosed_quote(text: str, delimiter: str, quotechar: str,
                   escapechar: str | None) -> int | None:
    """1-based line (of ``text``) of the first record whose quoted value never closes
    before the end of its line, as the csv module reads it; ``None`` if there is none."""
    lines = iter(text.splitlines(keepends=True))
    for line, fields in _records(lines, delimiter, quotechar, escapechar):
        if fields is None or any("\n" in f or "\r" in f for f in fields):
            return line
    return None


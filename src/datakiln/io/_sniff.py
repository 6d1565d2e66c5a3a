"""CSV dialect sniffing: delimiter, header and padding guessed from a file's first lines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from datakiln.errors import EmptySourceError
from datakiln.io._lines import split_line

__all__ = ["DEFAULT_NA_VALUES", "CsvDialect", "sniff_dialect", "split_rows", "unique_names"]

#: markers read as missing unless ``na_values=`` says otherwise
DEFAULT_NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "?")
_DELIMITERS = (",", "\t", ";", "|")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass(frozen=True)
class CsvDialect:
    """What sniffing decided: ``delimiter``, whether there is a ``header`` row, ``trim``."""

    delimiter: str
    header: bool
    trim: bool
    quotechar: str = '"'


def split_rows(lines: list[str], delimiter: str, quotechar: str) -> list[list[str]]:
    """Fields of each line (see :func:`datakiln.io._lines.split_line`)."""
    return [split_line(line, delimiter, quotechar) for line in lines]


def _guess_delimiter(lines: list[str], quotechar: str) -> str:
    best, best_score = ",", (-1.0, 0)
    for delimiter in _DELIMITERS:
        widths = [len(row) for row in split_rows(lines, delimiter, quotechar) if row]
        if not widths:
            continue
        mode = max(set(widths), key=widths.count)
        score = (widths.count(mode) / len(widths) if mode > 1 else 0.0, mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_like_header(rows: list[list[str]], na_values: set[str]) -> bool:
    """A first row is a header if it breaks a column's type or never recurs in its column."""
    if len(rows) < 2:
        return bool(rows) and not any(_NUMBER.match(v) for v in rows[0])
    first, rest = rows[0], rows[1:]
    # a header may leave a name empty (pandas' to_csv writes ",a,b" for its index): judge the
    # named cells only; a missing-value marker or a number among them means a data row
    named = [i for i, v in enumerate(first) if v.strip()]
    if not named or any(first[i].strip() in na_values or _NUMBER.match(first[i]) for i in named):
        return False
    for index in named:
        below = [r[index].strip() for r in rest if index < len(r) and r[index].strip() not in na_values]
        if below and all(_NUMBER.match(v) for v in below):
            return True  # a text first row above a numeric column
    seen = {i: {r[i].strip() for r in rest if i < len(r)} for i in named}
    names = [first[i].strip() for i in named]
    return len(set(names)) == len(names) and all(first[i].strip() not in seen[i] for i in named)


def sniff_dialect(
    text: str,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    trim: bool | str = "auto",
    quotechar: str = '"',
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
) -> CsvDialect:
    """Guess delimiter, header and trimming from the first lines of a file.

    Arguments that are given (not ``None`` / ``"auto"``) are kept as they are.

    >>> sniff_dialect("39, State-gov, ?\\n50, Private, 13\\n")
    CsvDialect(delimiter=',', header=False, trim=True, quotechar='"')
    """
    lines = [line for line in text.splitlines() if line.strip()][:200]
    if not lines:
        raise EmptySourceError("the file has no lines to read")
    if delimiter is None:
        delimiter = _guess_delimiter(lines, quotechar)
    rows = split_rows(lines, delimiter, quotechar)
    if header is None:
        header = _looks_like_header(rows[:100], set(na_values))
    if trim == "auto":
        trim = any(v != v.strip() and v.strip() for row in rows for v in row)
    return CsvDialect(delimiter, bool(header), bool(trim), quotechar)


def unique_names(names: list[str]) -> list[str]:
    result, seen = [], set()
    for index, name in enumerate(names):
        name = name.strip() or f"column_{index}"
        base, n = name, 1
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        result.append(name)
    return result

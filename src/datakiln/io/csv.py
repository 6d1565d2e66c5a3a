"""CSV/TSV reader: dialect sniffing, NA markers, trimming, parallel byte-range parsing.

Arrow's multi-threaded CSV parser does the work; datakiln adds what it lacks: delimiter
and header detection from a sample, NA markers that still match when values are padded
(``", ?"`` in Adult), whitespace trimming of text, column types fixed from a sample so
every chunk agrees, bad-row handling with file and line number, and byte-range splitting
so a file larger than memory streams in chunks that parse in parallel. Splitting at
newlines assumes no line breaks inside quoted values, the same assumption Arrow's own
parallel reader makes (``newlines_in_values=True`` switches to a serial reader).
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from datakiln.errors import (
    EmptySourceError,
    EncodingError,
    InvalidArgumentError,
    ParseError,
    SchemaError,
    SchemaMismatchError,
)
from datakiln.io._csv_errors import CsvErrorsMixin
from datakiln.io._files import (
    FileSet,
    column_type,
    newline_blocks,
    newline_ranges,
    read_failure,
    split_compression,
    uncompressed_size,
)
from datakiln.io._sniff import (
    DEFAULT_NA_VALUES,
    CsvDialect,
    sniff_dialect,
    split_rows,
    unique_names,
)
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown
from datakiln.units import format_bytes

__all__ = ["DEFAULT_NA_VALUES", "CsvDialect", "CsvSource", "sniff_dialect"]

_SPLITTABLE_ENCODINGS = {"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1", "cp1252"}
#: the longest first line looked for when sniffing (a longer one needs ``infer_bytes``)
_FIRST_LINE_LIMIT = 128 * 1024 * 1024
_SCAN_BLOCK = 16 * 1024 * 1024
_BOM = codecs.BOM_UTF8
_UTF8 = ("utf-8", "utf8", "utf-8-sig")
_ASCII_PROBE = 'a,;|\t"\r\n'


class CsvSource(CsvErrorsMixin, Source):
    """Delimited text files (CSV, TSV, ...) that share one set of columns.

    Parameters
    ----------
    files : FileSet
        The files, from :func:`datakiln.io._files.resolve_files`.
    delimiter : str, optional
        One character; guessed among ``, \\t ; |`` when ``None``.
    header : bool, optional
        Whether the first line holds column names; guessed when ``None``.
    names : list of str, optional
        Column names to use (replacing a header row when there is one).
    na_values : list of str, optional
        Values read as missing, matched after trimming; default :data:`DEFAULT_NA_VALUES`.
    trim : bool or "auto"
        Strip white space around text values; ``"auto"`` does when the sample is padded.
    encoding : str
        Text encoding of the files (default ``"utf-8"``).
    quotechar : str or None
        The quote character (default ``'"'``); ``None`` reads quotes as ordinary characters
        (the SMS Spam TSV, whose messages start with unescaped quotes).
    column_types : dict, optional
        ``{column: Arrow type or type name}`` forced instead of inferred.
    on_bad_rows : {"error", "skip"}
        Rows with the wrong number of fields raise :class:`ParseError` naming the file and
        line, or are skipped and counted in ``stats``.
    block_bytes : int
        Bytes per parallel parse task (default 32 MB); bounds memory per task.
    infer_bytes : int
        Bytes read from the first file to sniff the dialect and infer types (default 1 MB).
    newlines_in_values : bool
        Set when quoted values contain line breaks; reading is then serial.
    """

    def __init__(
        self,
        files: FileSet,
        *,
        delimiter: str | None = None,
        header: bool | None = None,
        names: Sequence[str] | None = None,
        na_values: Sequence[str] | None = None,
        trim: bool | str = "auto",
        encoding: str = "utf-8",
        quotechar: str | None = '"',
        escapechar: str | None = None,
        column_types: Mapping[str, Any] | None = None,
        on_bad_rows: str = "error",
        block_bytes: int = 32 * 1024 * 1024,
        infer_bytes: int = 1024 * 1024,
        newlines_in_values: bool = False,
    ) -> None:
        super().__init__()
        if on_bad_rows not in ("error", "skip"):
            raise InvalidArgumentError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
        if delimiter is not None and len(delimiter) != 1:
            raise InvalidArgumentError(
                f"delimiter must be one character, got {delimiter!r}; for ', ' use ',' "
                "(padding is trimmed)")
        if delimiter is not None and delimiter == quotechar:
            raise InvalidArgumentError(
                f"the delimiter {delimiter!r} is also the quote character, so no field could be "
                "split; pass the file's real delimiter (or a different quotechar=)")
        if delimiter is not None and delimiter in "\r\n":
            raise InvalidArgumentError(f"the delimiter cannot be a line break, got {delimiter!r}")
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InvalidArgumentError(f"unknown encoding {encoding!r}") from exc
        probe = _ASCII_PROBE.encode(encoding, "replace").removeprefix(_BOM)  # utf-8-sig
        if probe != _ASCII_PROBE.encode("ascii"):
            # lines are found by their b"\n" bytes, which UTF-16/32 and EBCDIC do not write
            raise InvalidArgumentError(
                f"encoding {encoding!r} is not supported for CSV: datakiln reads encodings that "
                "write plain ASCII as ASCII (utf-8, latin-1, cp1252, shift_jis ...); convert the "
                f"file first, e.g. `iconv -f {encoding} -t utf-8 in.csv > out.csv`")
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} CSV files"
        self.encoding = encoding
        self.on_bad_rows = on_bad_rows
        self.block_bytes = int(block_bytes)
        self.newlines_in_values = newlines_in_values
        self.escapechar = escapechar
        self.na_values = list(DEFAULT_NA_VALUES if na_values is None else na_values)
        first_text = self._sample_text(files.paths[0], infer_bytes)
        self.dialect = sniff_dialect(first_text, delimiter=delimiter, header=header, trim=trim,
                                     quotechar=quotechar, na_values=self.na_values)
        self.names = self._column_names(first_text, names)
        self._check_other_headers(names)
        self._schema = self._infer_types(first_text, column_types or {})
        self.tasks_are_independent = all(self._splittable(p) for p in files.paths)

    # -- set-up ---------------------------------------------------------------------------
    def _open(self, path: str) -> Any:
        codec = split_compression(path)[1]
        return self.files.filesystem.open_input_stream(path, compression=codec)

    def _sample_text(self, path: str, size: int) -> str:
        """The first ``size`` bytes of ``path`` cut after their last newline (reading on to
        the first newline when the first line is longer), decoded, byte-order mark dropped."""
        try:
            with self._open(path) as stream:
                parts = [stream.read(size)]
                total = len(parts[0])
                while total >= size and b"\n" not in parts[-1]:
                    parts.append(stream.read(max(size, 1 << 22)))
                    total += len(parts[-1])
                    if not parts[-1]:
                        break
                    if total > max(size, _FIRST_LINE_LIMIT):
                        raise ParseError(
                            f"{path!r}: the first line is longer than {format_bytes(total)} "
                            "with no line break; if this is a delimited text file, pass "
                            "infer_bytes= larger than its first line, otherwise pass the "
                            "right format=")
                data = b"".join(parts)
        except (OSError, pa.ArrowException) as exc:
            raise read_failure(path, exc) from exc
        if data.startswith(_BOM) and self.encoding.lower().replace("_", "-") in _UTF8:
            data = data[len(_BOM):]  # Arrow drops it too; keep it out of the first name
        if not data.strip():
            raise EmptySourceError(f"{path!r} is empty: there is no header and no row to read")
        if len(data) >= size and b"\n" in data:
            data = data[: data.rindex(b"\n") + 1]
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise EncodingError(
                f"{path!r} starts with a UTF-16 byte-order mark: it is UTF-16 (or UTF-32) text, "
                "which datakiln does not read as CSV; convert it first, e.g. "
                "`iconv -f utf-16 -t utf-8 in.csv > out.csv`")
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise EncodingError(
                f"{path!r} line {line}: bytes {data[exc.start:exc.start + 8]!r} are not valid "
                f"{self.encoding}; pass the file's encoding, e.g. encoding='latin-1'"
            ) from exc

    def _column_names(self, text: str, names: Sequence[str] | None) -> list[str]:
        first = next(iter(split_rows([line for line in text.splitlines() if line.strip()][:1],
                                       self.dialect.delimiter, self.dialect.quotechar)), [])
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != len(first):
                raise SchemaError(
                    f"{len(names)} names were given but {self.files.paths[0]!r} has "
                    f"{len(first)} fields per line; give one name per field")
            return unique_names(names)
        if self.dialect.header:
            return unique_names([v.strip() for v in first])
        return [f"column_{i}" for i in range(len(first))]

    def _check_other_headers(self, names: Sequence[str] | None) -> None:
        for path in self.files.paths[1:]:
            text = self._sample_text(path, 64 * 1024)
            first = split_rows([next(line for line in text.splitlines() if line.strip())],
                                 self.dialect.delimiter, self.dialect.quotechar)[0]
            theirs = [v.strip() for v in first]
            if len(theirs) != len(self.names) or (
                    self.dialect.header and names is None and theirs != self.names):
                raise SchemaMismatchError(
                    f"{path!r} has columns {theirs if self.dialect.header else len(theirs)} but "
                    f"{self.files.paths[0]!r} has {self.names}; files read together must share "
                    "their columns")

    def _read_options(self, *, skip_header: bool, block: int | None = None) -> pacsv.ReadOptions:
        return pacsv.ReadOptions(column_names=self.names, skip_rows=int(skip_header),
                                 encoding=self.encoding, use_threads=True,
                                 block_size=block or 1 << 22)

    def _parse_options(self, skipped: list[str], bad: list[tuple[Any, ...]]) -> pacsv.ParseOptions:
        """Parse options whose bad-row handler notes a skipped row's text in ``skipped``
        (``on_bad_rows="skip"``) or the failing row in ``bad``."""
        on_bad = self.on_bad_rows

        def handler(row: Any) -> str:
            if on_bad == "error":
                bad.append((row.number, row.text, row.actual_columns, row.expected_columns))
                return "error"
            skipped.append(row.text)
            return "skip"

        return pacsv.ParseOptions(delimiter=self.dialect.delimiter,
                                  quote_char=self.dialect.quotechar or False,
                                  escape_char=self.escapechar or False,
                                  newlines_in_values=self.newlines_in_values,
                                  invalid_row_handler=handler)

    def _null_markers(self) -> list[str]:
        markers = set(self.na_values)
        if self.dialect.trim:
            markers |= {f"{pad}{m}{end}" for m in self.na_values for pad in ("", " ")
                        for end in ("", " ")}
        return sorted(markers)

    def _convert_options(self, types: Mapping[str, pa.DataType] | None) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(column_types=types, null_values=self._null_markers(),
                                    strings_can_be_null=True, quoted_strings_can_be_null=True)

    def _infer_types(self, text: str, forced: Mapping[str, Any]) -> pa.Schema:
        unknown = sorted(set(forced) - set(self.names))
        if unknown:
            raise SchemaError(f"column_types names unknown columns {unknown}; the columns are "
                              f"{self.names}")
        types = {name: column_type(name, value) for name, value in forced.items()}
        data = text.encode("utf-8")
        sample = self._parse(data, "utf-8", skip_header=self.dialect.header,
                             where=self.files.paths[0], types=types, record=False)
        codes = self._zero_led_codes(data, sample.schema, types)
        fields = []
        for field in sample.schema:
            dtype = pa.string() if field.name in codes else field.type
            if pa.types.is_null(dtype):
                dtype = pa.string()  # nothing seen yet: keep text so later values still parse
            fields.append(pa.field(field.name, types.get(field.name, dtype)))
        return pa.schema(fields)

    def _zero_led_codes(self, data: bytes, schema: pa.Schema,
                        forced: Mapping[str, pa.DataType]) -> set[str]:
        """Integer-looking columns of the sample holding a value with a leading zero ("00501",
        "007"): codes, kept as text (as integers "00501" and "501" would become equal)."""
        integers = {f.name: pa.string() for f in schema
                    if pa.types.is_integer(f.type) and f.name not in forced}
        if not integers:
            return set()
        text = self._parse(data, "utf-8", skip_header=self.dialect.header,
                           where=self.files.paths[0], types=integers, record=False)
        return {name for name in integers
                if pc.any(pc.match_substring_regex(text[name], r"^\s*[-+]?0\d")).as_py()}

    # -- parsing ----------------------------------------------------------------------------
    def _parse(self, data: bytes | Any, encoding: str, *, skip_header: bool, where: str,
               types: Mapping[str, pa.DataType] | None, offset: int = 0,
               record: bool = True,
               lines: Callable[[], int | None] | None = None) -> pa.Table:
        """Parse CSV bytes (or a file) into a finished table; ``record`` counts skipped rows.

        Bytes get a final newline when they lack one, are parsed again as one Arrow block
        when a line is longer than Arrow's block, and a quote left open at the end of a line
        (which Arrow would silently run on into the next lines) is an error naming the line,
        or a skipped row under ``on_bad_rows="skip"``. A file handle instead raises
        :class:`_NeedsRanges` in those cases, so :meth:`read_all` reads by byte ranges;
        it passes ``lines``, a callable giving the file's newline count (``None`` when it
        holds no quote).
        """
        read_options = self._read_options(skip_header=skip_header)
        if encoding != self.encoding:
            read_options.encoding = encoding
        in_memory = isinstance(data, bytes)
        if in_memory and data and data[-1:] not in (b"\n", b"\r"):
            data += b"\n"
        removed: list[tuple[int | None, str]] = []
        original = data
        while True:
            bad: list[tuple[Any, ...]] = []
            skipped: list[str] = []
            source = io.BytesIO(data) if in_memory else data
            try:
                table = pacsv.read_csv(source, read_options=read_options,
                                       parse_options=self._parse_options(skipped, bad),
                                       convert_options=self._convert_options(types))
            except pa.ArrowInvalid as exc:
                if (("straddl" in str(exc) or "Could not skip" in str(exc)) and in_memory
                        and read_options.block_size <= len(data)):
                    read_options.block_size = len(data) + 1  # a line longer than a block
                    continue
                if "straddl" in str(exc) and not in_memory:
                    raise _NeedsRanges from exc
                raise self._translate(exc, where, data if in_memory else None,
                                      offset, bad) from exc
            except OSError as exc:
                raise read_failure(where, exc) from exc
            if in_memory:
                newlines = data.count(b"\n") if self.dialect.quotechar and \
                    self.dialect.quotechar.encode() in data else None
            else:
                newlines = lines() if lines is not None else None
            if not self._merged_lines(table, newlines, skip_header, skipped):
                break
            if not in_memory:
                raise _NeedsRanges
            data = self._drop_open_quote(data, encoding, where, offset, removed)
        if record:
            for line, text in removed:
                self.stats.record(where, line, text)
            for text in skipped:
                self.stats.record(where, None, text)
            self._locate_skipped(where, original if in_memory else None, offset)
        return self._finish(table)

    def _finish(self, table: pa.Table) -> pa.Table:
        if not self.dialect.trim:
            return table
        markers = pa.array(self.na_values, pa.string())
        columns = []
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column = pc.utf8_trim_whitespace(column)
                column = pc.if_else(pc.is_in(column, value_set=markers),
                                    pa.scalar(None, column.type), column)
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=table.schema)

    # -- Source API -------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"csv:{self.files.fingerprint()}:{self.dialect}:{self.names}:{self.na_values}"

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(None, self.files.total_bytes, exact=False)

    def task_bytes(self) -> int:
        """Raw bytes of a range plus their parsed Arrow form (about three times the range).

        A range is ``block_bytes`` long at most, and no longer than the largest file (its
        decompressed size for compressed files), so small files cost what they hold.
        """
        largest = max((uncompressed_size(self.files.filesystem, path, size)
                       for path, size in zip(self.files.paths, self.files.sizes)), default=0)
        return 3 * max(min(self.block_bytes, largest), 64 * 1024)

    def _types(self) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in self._schema}

    def _splittable(self, path: str, compressed: bool = False) -> bool:
        """Whether the text of ``path`` can be cut at newline bytes (into byte ranges, or
        into decompressed blocks when ``compressed``)."""
        return ((split_compression(path)[1] is not None) == compressed
                and not self.newlines_in_values
                and self.encoding.lower() in _SPLITTABLE_ENCODINGS)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        types = self._types()
        self.stats.reset()
        for path, size in zip(self.files.paths, self.files.sizes):
            if self._splittable(path, compressed=True):
                yield from self._block_tasks(path, types, columns, filter)
                continue
            if not self._splittable(path):
                yield from self._serial_tasks(path, types, columns, filter)
                continue
            for start, end in newline_ranges(self.files.filesystem, path, size, self.block_bytes):
                yield self._range_task(path, start, end, types, columns, filter)

    def _range_task(self, path: str, start: int, end: int, types: dict[str, pa.DataType],
                    columns: Sequence[str] | None, filter: pc.Expression | None) -> ReadTask:
        def task() -> pa.Table:
            with self.files.filesystem.open_input_file(path) as handle:
                data = handle.read_at(end - start, start)
            table = self._parse(data, self.encoding, skip_header=start == 0 and self.dialect.header,
                                where=path, types=types, offset=start)
            return apply_pushdown(table, columns, filter)
        return task

    def _block_tasks(self, path: str, types: dict[str, pa.DataType],
                     columns: Sequence[str] | None, filter: pc.Expression | None) -> Iterator[ReadTask]:
        """A compressed file, ``block_bytes`` of decompressed text at a time, each cut after
        its last newline and parsed like a byte range of an uncompressed file."""
        for offset, _, data in newline_blocks(self._open, path, self.block_bytes):
            yield self._bytes_task(data, path, offset, types, columns, filter)

    def _bytes_task(self, data: bytes, path: str, offset: int, types: dict[str, pa.DataType],
                    columns: Sequence[str] | None, filter: pc.Expression | None) -> ReadTask:
        def task() -> pa.Table:
            table = self._parse(data, self.encoding, where=path, types=types, offset=offset,
                                skip_header=offset == 0 and self.dialect.header)
            return apply_pushdown(table, columns, filter)
        return task

    def _serial_tasks(self, path: str, types: dict[str, pa.DataType],
                      columns: Sequence[str] | None, filter: pc.Expression | None) -> Iterator[ReadTask]:
        """Arrow's streaming reader: for quoted line breaks and encodings whose text cannot
        be cut at a newline byte (UTF-16 ...)."""
        bad: list[tuple[Any, ...]] = []
        skipped: list[str] = []
        try:
            stream = self._open(path)
        except (OSError, pa.ArrowException) as exc:
            raise read_failure(path, exc) from exc
        try:
            try:
                reader = pacsv.open_csv(stream, read_options=self._read_options(
                    skip_header=self.dialect.header, block=self.block_bytes),
                    parse_options=self._parse_options(skipped, bad),
                    convert_options=self._convert_options(types))
            except pa.ArrowInvalid as exc:
                if "Could not skip" in str(exc) and self._header_only(path):
                    return
                raise self._translate(exc, path, None, 0, bad) from exc
            except OSError as exc:
                raise read_failure(path, exc) from exc
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise self._translate(exc, path, None, 0, bad) from exc
                except OSError as exc:
                    raise read_failure(path, exc) from exc
                table = self._finish(pa.Table.from_batches([batch]))
                for text in skipped:
                    self.stats.record(path, None, text)
                skipped.clear()
                self._locate_skipped(path, None, 0)
                yield lambda table=table: apply_pushdown(table, columns, filter)
        finally:
            stream.close()

    def _header_only(self, path: str) -> bool:
        """Whether ``path`` holds one line and no line break (Arrow cannot skip it)."""
        with self._open(path) as stream:
            data = stream.read(self.block_bytes)
        text = data.decode(self.encoding, "replace")
        return len(data) < self.block_bytes and len(text.strip().splitlines()) <= 1

    def read_all(self, columns: Sequence[str] | None = None,
                 filter: pc.Expression | None = None) -> pa.Table:
        """Whole files through Arrow's multi-threaded reader (fastest way to materialise);
        files it cannot take whole (see :meth:`_parse`) are read by byte ranges. The
        newlines the open-quote test needs are counted on a thread while Arrow parses."""
        if not all(self._splittable(p) for p in self.files.paths):
            return super().read_all(columns, filter)
        self.stats.reset()
        tables = []
        try:
            for path, size in zip(self.files.paths, self.files.sizes):
                with self.files.filesystem.open_input_file(path) as handle:
                    if size == 0 or handle.read_at(1, size - 1) not in (b"\n", b"\r"):
                        raise _NeedsRanges  # no final newline: the ranges add it
                # fsspec files may share one position between handles: count first there
                ahead = isinstance(self.files.filesystem, pafs.LocalFileSystem)
                with ThreadPoolExecutor(1) as counter:
                    lines = counter.submit(self._quoted_lines, path)
                    if not ahead:
                        lines.result()
                    with self.files.filesystem.open_input_file(path) as handle:
                        table = self._parse(handle, self.encoding, where=path,
                                            skip_header=self.dialect.header,
                                            types=self._types(), lines=lines.result)
                tables.append(apply_pushdown(table, columns, filter))
        except _NeedsRanges:
            return super().read_all(columns, filter)
        except OSError as exc:
            raise read_failure(self.files.paths[len(tables)], exc) from exc
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def _quoted_lines(self, path: str) -> int | None:
        """Newlines in ``path``, or ``None`` when it holds no quote (nothing to check)."""
        if not self.dialect.quotechar:
            return None
        quote, lines, quoted = self.dialect.quotechar.encode(), 0, False
        with self.files.filesystem.open_input_file(path) as handle:
            while block := handle.read(_SCAN_BLOCK):
                lines += block.count(b"\n")
                quoted = quoted or quote in block
        return lines if quoted else None

    def _read_head(self, rows: int) -> pa.Table:
        text = self._sample_text(self.files.paths[0], 1024 * 1024)
        sample = self._parse(text.encode(self.encoding), self.encoding,
                             skip_header=self.dialect.header, where=self.files.paths[0],
                             types=self._types(), record=False)
        if sample.num_rows >= rows:
            return sample.slice(0, rows)
        return super()._read_head(rows)


class _NeedsRanges(Exception):
    """Internal: a whole-file parse met a case only byte-range parsing handles."""

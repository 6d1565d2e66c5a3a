"""JSON Lines (parallel byte-range parsing by Arrow) and JSON arrays (streamed decoding).

The column types are inferred from the first megabyte and then fixed for every chunk, so
all tables of one source agree. A JSON array is decoded object by object with the standard
library's incremental decoder, and a compressed JSON Lines file is read block by block, so
neither needs the whole file in memory. When Arrow rejects a chunk, the failing record is
found again in Python (error path only) so the message names its line in the file, and
``on_bad_rows="skip"`` drops it and counts it instead.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from datakiln.errors import (
    EmptySourceError,
    EncodingError,
    InvalidArgumentError,
    ParseError,
    SchemaError,
    SchemaMismatchError,
    SourceError,
)
from datakiln.io._files import (
    FileSet,
    newline_blocks,
    newline_ranges,
    read_failure,
    split_compression,
    uncompressed_size,
)
from datakiln.io._lines import line_at
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["JsonSource"]

_ARRAY_CHUNK_ROWS = 65_536
_NULL_LINE = re.compile(rb"\n[ \t\r]*null")
_HINT_SKIP = "fix the record, or pass on_bad_rows='skip' to skip and count such records"


class JsonSource(Source):
    """JSON Lines files or files holding one JSON array of objects.

    Parameters
    ----------
    files : FileSet
        The files, from :func:`datakiln.io._files.resolve_files`.
    block_bytes : int
        Bytes per parallel parse task (default 32 MB).
    infer_bytes : int
        Bytes of the first file the column types are inferred from (default 1 MB).
    on_bad_rows : {"error", "skip"}
        A record that is not valid JSON, not an object, or whose values do not fit the
        inferred types raises :class:`ParseError` / :class:`SchemaError` naming the file
        and line (the item number in a JSON array), or is skipped and counted in ``stats``.
    """

    def __init__(self, files: FileSet, *, block_bytes: int = 32 * 1024 * 1024,
                 infer_bytes: int = 1024 * 1024, on_bad_rows: str = "error") -> None:
        super().__init__()
        if on_bad_rows not in ("error", "skip"):
            raise InvalidArgumentError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} JSON files"
        self.block_bytes = int(block_bytes)
        self.on_bad_rows = on_bad_rows
        self._layouts = [self._layout(path) for path in files.paths]
        self._schema = self._infer(files.paths[0], self._layouts[0], infer_bytes)
        self.tasks_are_independent = all(
            layout == "lines" and split_compression(path)[1] is None
            for path, layout in zip(files.paths, self._layouts))
        for path, layout in zip(files.paths[1:], self._layouts[1:]):
            theirs = self._infer(path, layout, 64 * 1024)
            if set(theirs.names) != set(self._schema.names):
                raise SchemaMismatchError(
                    f"{path!r} has fields {theirs.names} but {files.paths[0]!r} has "
                    f"{self._schema.names}; files read together must share their fields")

    def _open(self, path: str) -> Any:
        return self.files.filesystem.open_input_stream(path, compression=split_compression(path)[1])

    def _read_start(self, path: str, size: int) -> bytes:
        try:
            with self._open(path) as stream:
                return bytes(stream.read(size))
        except (OSError, pa.ArrowException) as exc:
            raise read_failure(path, exc) from exc

    def _layout(self, path: str) -> str:
        head = self._read_start(path, 4096)
        head = head.removeprefix(codecs.BOM_UTF8).lstrip()
        if not head:
            raise EmptySourceError(f"{path!r} is empty: there are no records to read")
        if head[:1] == b"[":
            return "array"
        if head[:1] == b"{":
            return "lines"
        raise ParseError(f"{path!r} is neither JSON Lines (one object per line) nor a JSON array "
                         f"of objects; it starts with {head[:40]!r}")

    def _infer(self, path: str, layout: str, size: int) -> pa.Schema:
        if layout == "array":
            first = next(self._array_tables(path, None, max_rows=1000), None)
            if first is None:
                raise EmptySourceError(f"{path!r} holds an empty JSON array")
            sample = first
        else:
            data = self._read_start(path, size)
            if len(data) == size and b"\n" in data:
                data = data[: data.rindex(b"\n") + 1]
            sample = self._parse_lines(data, path, None, first_line=1, record=False)
        if not sample.column_names:
            raise EmptySourceError(f"{path!r}: the first records have no fields ({{}}), so there "
                                   "are no columns to read")
        return pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                          for f in sample.schema])

    # -- JSON Lines ---------------------------------------------------------------------------
    def _arrow_lines(self, data: bytes, schema: pa.Schema | None) -> pa.Table:
        if _NULL_LINE.search(data) or data.removeprefix(codecs.BOM_UTF8).lstrip().startswith(
                b"null"):
            # Arrow reads a `null` line as a row of nulls, and crashes (pyarrow 26) on a
            # block of only such lines: refuse it as the bad record it is
            raise pa.ArrowInvalid("a line holds null, not a JSON object")
        options = pajson.ParseOptions(explicit_schema=schema,
                                      unexpected_field_behavior="error" if schema else "infer")
        return pajson.read_json(io.BytesIO(data), parse_options=options,
                                read_options=pajson.ReadOptions(block_size=max(1 << 22,
                                                                               len(data) + 1)))

    def _parse_lines(self, data: bytes, path: str, schema: pa.Schema | None, *,
                     offset: int = 0, first_line: int | None = None,
                     record: bool = True) -> pa.Table:
        """Parse newline-delimited records; ``first_line`` is the file line ``data`` starts
        on (found from ``offset`` when needed, on the error path only)."""
        try:
            return self._arrow_lines(data, schema) if data.strip() else self._no_rows(path,
                                                                                      schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            failure = exc
        if first_line is None:
            first_line = line_at(self._open, path, offset) if offset else 1
        lines = data.split(b"\n")
        dropped: set[int] = set()
        while True:
            index, reason, error = self._bad_line(lines, dropped, schema, failure)
            text = lines[index].decode("utf-8", "replace").rstrip("\r")
            if self.on_bad_rows == "error":
                hint = _HINT_SKIP
                if error is SchemaError:
                    hint = ("the types are inferred from the first megabyte: pass "
                            "infer_bytes= large enough to see this record, or " + _HINT_SKIP)
                raise error(f"{path!r} line {first_line + index}: {reason}: {text[:200]!r}; "
                            f"{hint}")
            dropped.add(index)
            if record:
                self.stats.record(path, first_line + index, text)
            kept = b"\n".join(line for i, line in enumerate(lines) if i not in dropped)
            if not kept.strip():
                return self._no_rows(path, schema)
            try:
                return self._arrow_lines(kept, schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                failure = exc

    @staticmethod
    def _no_rows(path: str, schema: pa.Schema | None) -> pa.Table:
        if schema is None:
            raise EmptySourceError(f"{path!r}: no record in the first lines is a valid JSON "
                                   "object to learn the fields from; fix the file")
        return schema.empty_table()

    def _bad_line(self, lines: list[bytes], dropped: set[int], schema: pa.Schema | None,
                  failure: Exception) -> tuple[int, str, type[SourceError] | type[SchemaError]]:
        """(index, reason, error class) of the first line Arrow cannot take."""
        candidates = [i for i, line in enumerate(lines) if i not in dropped and line.strip()]
        for index in candidates:
            try:
                value = json.loads(lines[index])
            except RecursionError:
                return index, "a record nested too deeply to read (thousands of levels)", ParseError
            except ValueError as exc:
                return index, f"invalid JSON ({exc.msg})" if isinstance(
                    exc, json.JSONDecodeError) else f"invalid JSON ({exc})", ParseError
            if not isinstance(value, dict):
                found = "null" if value is None else type(value).__name__
                return index, f"a record must be a JSON object, found {found}", ParseError
        # every line is an object: find the first one Arrow rejects by bisecting prefixes
        low, high = 0, len(candidates)
        while high - low > 1:
            middle = (low + high) // 2
            try:
                self._arrow_lines(b"\n".join(lines[i] for i in candidates[:middle]), schema)
                low = middle
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                high = middle
        index = candidates[max(high - 1, 0)]
        try:
            self._arrow_lines(lines[index], schema)
            message = str(failure)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = str(exc)
        message = re.sub(r" in row \d+", "", message.removeprefix("JSON parse error: "))
        error = SchemaError if "changed" in message or "unexpected field" in message.lower() \
            else ParseError
        return index, f"values do not fit the inferred types ({message})", error

    def _stream_lines(self, path: str, columns: Sequence[str] | None,
                      filter: pc.Expression | None) -> Iterator[ReadTask]:
        """A compressed JSON Lines file, ``block_bytes`` of decompressed text at a time."""
        for _, line, data in newline_blocks(self._open, path, self.block_bytes):
            if data.strip():
                yield lambda d=data, n=line: apply_pushdown(
                    self._parse_lines(d, path, self._schema, first_line=n), columns, filter)

    # -- JSON arrays --------------------------------------------------------------------------
    def _array_tables(self, path: str, schema: pa.Schema | None,
                      max_rows: int | None = None) -> Iterator[pa.Table]:
        try:
            yield from self._decode_array(path, schema, max_rows)
        except UnicodeDecodeError as exc:
            raise EncodingError(f"{path!r}: JSON text must be UTF-8 ({exc}); convert the file "
                                "to UTF-8") from exc
        except (OSError, pa.ArrowException) as exc:
            raise read_failure(path, exc) from exc

    def _decode_array(self, path: str, schema: pa.Schema | None,
                      max_rows: int | None) -> Iterator[pa.Table]:
        decoder = json.JSONDecoder()
        rows: list[dict[str, Any]] = []
        item = 0
        with self._open(path) as stream:
            reader = io.TextIOWrapper(stream, encoding="utf-8-sig")
            buffer, position, started = "", 0, False
            while True:
                if len(buffer) - position < 1 << 16:
                    more = reader.read(1 << 20)
                    buffer, position = buffer[position:] + more, 0
                    if not more and not buffer.strip():
                        break
                while position < len(buffer) and buffer[position] in " \t\r\n,":
                    position += 1
                if not started:
                    if buffer[position:position + 1] != "[":
                        raise ParseError(f"{path!r} is not a JSON array")
                    started, position = True, position + 1
                    continue
                if buffer[position:position + 1] == "]":
                    break
                if position >= len(buffer):
                    if not more:
                        raise ParseError(f"{path!r} ends before its JSON array is closed; the "
                                         "file is truncated")
                    continue
                try:
                    record, position = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError as exc:
                    more = reader.read(1 << 20)  # perhaps only cut short by the buffer
                    if more:
                        buffer, position = buffer[position:] + more, 0
                        continue
                    raise ParseError(f"{path!r}: invalid JSON in item {item + 1} of the array: "
                                     f"{exc.msg}; fix the file (a truncated file ends like this)") from exc
                except RecursionError as exc:
                    raise ParseError(f"{path!r}: item {item + 1} of the array is nested too deeply "
                                     "to read (thousands of levels); flatten it") from exc
                item += 1
                if not isinstance(record, dict):
                    if self.on_bad_rows == "skip":
                        self.stats.record(path, None, f"item {item}: {record!r:.180}")
                        continue
                    raise ParseError(f"{path!r}: array items must be objects, item {item} is "
                                     f"{record!r:.60}; {_HINT_SKIP}")
                rows.append(record)
                if max_rows and len(rows) >= max_rows or len(rows) >= _ARRAY_CHUNK_ROWS:
                    yield self._rows_table(rows, schema, path, item - len(rows))
                    rows = []
                    if max_rows:
                        return
        if rows:
            yield self._rows_table(rows, schema, path, item - len(rows))

    def _rows_table(self, rows: list[dict[str, Any]], schema: pa.Schema | None, path: str,
                    first_item: int) -> pa.Table:
        """Rows as a table; a record whose values do not fit ``schema`` is named (or skipped)."""
        try:
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            failure = exc
        kept = []
        for number, row in enumerate(rows, start=first_item + 1):
            try:
                pa.Table.from_pylist([row], schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                if self.on_bad_rows == "skip" and schema is not None:
                    self.stats.record(path, None, f"item {number}: {json.dumps(row)[:180]}")
                    continue
                raise SchemaError(
                    f"{path!r}: item {number} of the array does not fit the types inferred from "
                    f"the first 1000 items ({exc}): {json.dumps(row)[:200]}; {_HINT_SKIP}"
                ) from exc
            kept.append(row)
        if len(kept) == len(rows):
            raise SchemaError(f"{path!r}: items {first_item + 1}-{first_item + len(rows)} of the "
                              f"array mix types within a field ({failure}); make each field "
                              "hold one type")
        return pa.Table.from_pylist(kept, schema=schema)

    # -- Source API ---------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"json:{self.files.fingerprint()}:{self.on_bad_rows}"

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(None, self.files.total_bytes)

    def task_bytes(self) -> int:
        """Bytes one task holds: a range (at most ``block_bytes``, at most the largest file)
        and its table, about three times the text; ten times for a JSON array, whose items
        pass through Python objects."""
        largest = 0
        for path, size, layout in zip(self.files.paths, self.files.sizes, self._layouts):
            text = min(self.block_bytes, uncompressed_size(self.files.filesystem, path, size))
            largest = max(largest, text * (10 if layout == "array" else 3))
        return max(largest, 64 * 1024)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        self.stats.reset()
        for path, size, layout in zip(self.files.paths, self.files.sizes, self._layouts):
            if layout == "array":
                for table in self._array_tables(path, self._schema):
                    yield lambda t=table: apply_pushdown(t, columns, filter)
            elif split_compression(path)[1] is None:
                for start, end in newline_ranges(self.files.filesystem, path, size,
                                                 self.block_bytes):
                    yield self._range_task(path, start, end, columns, filter)
            else:
                yield from self._stream_lines(path, columns, filter)

    def _range_task(self, path: str, start: int, end: int, columns: Sequence[str] | None,
                    filter: pc.Expression | None) -> ReadTask:
        def task() -> pa.Table:
            try:
                with self.files.filesystem.open_input_file(path) as handle:
                    data = handle.read_at(end - start, start)
            except OSError as exc:
                raise read_failure(path, exc) from exc
            table = self._parse_lines(data, path, self._schema, offset=start)
            return apply_pushdown(table, columns, filter)
        return task

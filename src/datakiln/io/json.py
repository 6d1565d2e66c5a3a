"""JSON Lines (parallel byte-range parsing by Arrow) and JSON arrays (streamed decoding).

The column types are inferred from the first megabyte and then fixed for every chunk, so
all tables of one source agree. A JSON array is decoded object by object with the standard
library's incremental decoder, so it never needs the whole file in memory either.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from datakiln.errors import EmptySourceError, ParseError, SchemaError, SchemaMismatchError
from datakiln.io._files import FileSet, newline_ranges, split_compression
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["JsonSource"]

_ARRAY_CHUNK_ROWS = 65_536


class JsonSource(Source):
    """JSON Lines files or files holding one JSON array of objects."""

    def __init__(self, files: FileSet, *, block_bytes: int = 32 * 1024 * 1024,
                 infer_bytes: int = 1024 * 1024) -> None:
        super().__init__()
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} JSON files"
        self.block_bytes = block_bytes
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

    def _layout(self, path: str) -> str:
        with self._open(path) as stream:
            head = stream.read(4096).lstrip()
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
            with self._open(path) as stream:
                data = stream.read(size)
            if len(data) == size and b"\n" in data:
                data = data[: data.rindex(b"\n") + 1]
            sample = self._parse_lines(data, path, None)
        return pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                          for f in sample.schema])

    def _parse_lines(self, data: bytes, path: str, schema: pa.Schema | None) -> pa.Table:
        options = pajson.ParseOptions(explicit_schema=schema,
                                      unexpected_field_behavior="error" if schema else "infer")
        try:
            return pajson.read_json(io.BytesIO(data), parse_options=options,
                                    read_options=pajson.ReadOptions(block_size=1 << 22))
        except pa.ArrowInvalid as exc:
            line = _line_of_error(data, str(exc))
            hint = ("a field's values changed type after the first rows; the types are "
                    "inferred from the first megabyte" if "changed" in str(exc) or
                    "unexpected field" in str(exc).lower() else "fix the record")
            error = SchemaError if "changed" in str(exc) else ParseError
            raise error(f"{path!r}{line}: {exc}; {hint}") from exc

    def _array_tables(self, path: str, schema: pa.Schema | None,
                      max_rows: int | None = None) -> Iterator[pa.Table]:
        decoder = json.JSONDecoder()
        rows: list[dict[str, Any]] = []
        with self._open(path) as stream:
            reader = io.TextIOWrapper(stream, encoding="utf-8")
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
                        raise ParseError(f"{path!r} ends before its JSON array is closed")
                    continue
                try:
                    record, position = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError as exc:
                    if more:
                        buffer, position = buffer[position:] + reader.read(1 << 20), 0
                        continue
                    raise ParseError(f"{path!r}: invalid JSON in the array: {exc}") from exc
                if not isinstance(record, dict):
                    raise ParseError(f"{path!r}: array items must be objects, found {record!r:.60}")
                rows.append(record)
                if max_rows and len(rows) >= max_rows or len(rows) >= _ARRAY_CHUNK_ROWS:
                    yield pa.Table.from_pylist(rows, schema=schema)
                    rows = []
                    if max_rows:
                        return
        if rows:
            yield pa.Table.from_pylist(rows, schema=schema)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return f"json:{self.files.fingerprint()}"

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(None, self.files.total_bytes)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        for path, size, layout in zip(self.files.paths, self.files.sizes, self._layouts):
            if layout == "array":
                for table in self._array_tables(path, self._schema):
                    yield lambda t=table: apply_pushdown(t, columns, filter)
            elif split_compression(path)[1] is None:
                for start, end in newline_ranges(self.files.filesystem, path, size,
                                                 self.block_bytes):
                    yield self._range_task(path, start, end, columns, filter)
            else:
                with self._open(path) as stream:
                    data = stream.read()
                yield lambda d=data, p=path: apply_pushdown(
                    self._parse_lines(d, p, self._schema), columns, filter)

    def _range_task(self, path: str, start: int, end: int, columns: Sequence[str] | None,
                    filter: pc.Expression | None) -> ReadTask:
        def task() -> pa.Table:
            with self.files.filesystem.open_input_file(path) as handle:
                data = handle.read_at(end - start, start)
            return apply_pushdown(self._parse_lines(data, path, self._schema), columns, filter)
        return task


def _line_of_error(data: bytes, message: str) -> str:
    """`` line N`` when Arrow's message names a row; '' otherwise."""
    import re

    match = re.search(r"[Rr]ow #?(\d+)", message)
    return f" (row {int(match.group(1)) + 1} of its chunk)" if match else ""

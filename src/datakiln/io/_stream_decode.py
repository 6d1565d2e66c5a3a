"""Messages to Arrow: one row per message, with column types fixed after the first batch.

A stream has no end to infer types from, so the first batch decides them (or ``schema=``)
and every later batch is cast to that schema; a value that does not fit raises a
:class:`~datakiln.errors.ParseError` naming the message, the column and the value (or,
with ``on_error="skip"``, the message is counted in ``stats`` and left out). A column
seen for the first time later is ignored with a warning, never silently retyped.

Formats: ``fields`` (Redis field/value pairs, one column per field), ``json`` (one JSON
object per payload, parsed by Arrow's JSON reader), ``csv`` (lines under a header line),
``raw`` (the payload bytes in a ``value`` column).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from datakiln.errors import EncodingError, InvalidArgumentError, ParseError
from datakiln.io.base import ReadStats

log = logging.getLogger(__name__)

_TYPES = {"int": pa.int64(), "int64": pa.int64(), "int32": pa.int32(), "float": pa.float64(),
          "float64": pa.float64(), "float32": pa.float32(), "double": pa.float64(),
          "str": pa.string(), "string": pa.string(), "bool": pa.bool_(), "binary": pa.binary(),
          "timestamp": pa.timestamp("us"), "date": pa.date32()}


def arrow_type(value: Any) -> pa.DataType:
    """``value`` (an Arrow type, or a name such as ``"int"``, ``"float"``, ``"string"``) as an Arrow type."""
    if isinstance(value, pa.DataType):
        return value
    if isinstance(value, type) and value.__name__ in _TYPES:
        return _TYPES[value.__name__]
    if isinstance(value, str) and value.lower() in _TYPES:
        return _TYPES[value.lower()]
    raise InvalidArgumentError(f"unknown column type {value!r}; use a pyarrow type or one of "
                               f"{sorted(_TYPES)}")


def _infer(strings: pa.Array) -> pa.DataType:
    """int64, float64, bool or string: the narrowest type every non-empty value casts to."""
    present = pc.drop_null(pc.if_else(pc.equal(strings, ""), None, strings))
    if len(present) == 0:
        return pa.string()
    for candidate in (pa.int64(), pa.float64()):
        try:
            pc.cast(present, candidate)
            return candidate
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    lowered = pc.utf8_lower(present)
    if pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py():
        return pa.bool_()
    return pa.string()


def _cast(strings: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_string(target) or pa.types.is_binary(target):
        return strings.cast(target)
    if pa.types.is_integer(target) or pa.types.is_floating(target):
        try:  # the common case: no empty values
            return pc.cast(strings, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    blank_as_null = pc.if_else(pc.equal(strings, ""), None, strings)
    if pa.types.is_boolean(target):
        blank_as_null = pc.utf8_lower(blank_as_null)
    return pc.cast(blank_as_null, target)


class Decoder:
    """Decode batches of messages of one stream into tables of one fixed schema."""

    def __init__(self, format: str, schema: pa.Schema | None, name: str, on_error: str,
                 stats: ReadStats) -> None:
        self.format = format
        self.schema = schema
        self.name = name
        self.on_error = on_error
        self.stats = stats
        self._warned: set[str] = set()
        self.header: list[str] | None = None

    # -- public -----------------------------------------------------------------------------
    def set_header(self, line: bytes) -> None:
        """The CSV column names from a header line."""
        self.header = pacsv.read_csv(io.BytesIO(line + b"\n")).column_names

    def decode(self, payloads: list[Any], ids: list[str]) -> tuple[pa.Table, list[str], int]:
        """``(table, ids of the rows kept, messages skipped)`` for ``payloads`` (field dicts
        for ``fields``, bytes otherwise)."""
        try:
            return self._decode(payloads), ids, 0
        except (ParseError, EncodingError):
            if self.on_error == "raise":
                raise
        # one by one: keep what decodes, count the rest
        tables, kept, skipped = [], [], 0
        for payload, message in zip(payloads, ids):
            try:
                tables.append(self._decode([payload]))
                kept.append(message)
            except (ParseError, EncodingError):
                self._skip(message, payload)
                skipped += 1
        table = pa.concat_tables(tables) if tables else self._empty()
        return table, kept, skipped

    # -- formats ----------------------------------------------------------------------------
    def _decode(self, payloads: list[Any]) -> pa.Table:
        if self.format == "fields":
            return self._fields(payloads)
        if self.format == "json":
            return self._json(payloads)
        if self.format == "csv":
            return self._csv(payloads)
        values = [p if isinstance(p, bytes) else str(p).encode() for p in payloads]
        return pa.table({"value": pa.array(values, pa.binary())})

    def _empty(self) -> pa.Table:
        return (self.schema or pa.schema([])).empty_table()

    def _skip(self, message: str, payload: Any) -> None:
        self.stats.record(self.name, None, f"message {message}: {payload!r}"[:200])

    def _fields(self, entries: list[dict[bytes, bytes]]) -> pa.Table:
        if self.schema is None:
            names: dict[bytes, None] = {}
            for entry in entries:
                names.update(dict.fromkeys(entry))
            columns = {key.decode("utf-8", "replace"): self._strings(entries, key) for key in names}
            self.schema = pa.schema([(k, _infer(v)) for k, v in columns.items()])
        else:
            self._warn_new(entries)
            columns = {f.name: self._strings(entries, f.name.encode()) for f in self.schema}
        arrays = []
        for f in self.schema:
            try:
                arrays.append(_cast(columns[f.name], f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise self._bad_value(f, columns[f.name], exc) from exc
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _warn_new(self, entries: list[dict[bytes, bytes]]) -> None:
        known = self.schema.names if self.schema is not None else []
        if len(entries[0]) == len(known) and len(entries[-1]) == len(known):
            return  # the common case: same fields as the schema
        for entry in entries:
            for key in entry:
                name = key.decode("utf-8", "replace")
                if name not in known and name not in self._warned:
                    self._warned.add(name)
                    log.warning("%s: field %r first appeared after the column types were fixed; "
                                "it is ignored (pass schema= with it to read it)", self.name, name)

    def _strings(self, entries: list[dict[bytes, bytes]], key: bytes) -> pa.Array:
        raw = pa.array([entry.get(key) for entry in entries], pa.binary())
        try:
            return raw.cast(pa.string())
        except pa.ArrowInvalid as exc:
            raise EncodingError(f"{self.name}: field {key.decode('utf-8', 'replace')!r} holds bytes "
                                "that are not UTF-8; read with format='raw' to get the bytes") from exc

    def _bad_value(self, column: pa.Field, strings: pa.Array, exc: Exception) -> ParseError:
        for position, value in enumerate(strings.to_pylist()):
            try:
                _cast(pa.array([value], pa.string()), column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return ParseError(
                    f"{self.name}: message {position + 1} of the batch has {column.name}={value!r}, "
                    f"which is not {column.type} (the type the first batch fixed); pass "
                    f"schema={{'{column.name}': 'string'}} (or the right type), or on_error='skip'")
        return ParseError(f"{self.name}: column {column.name!r} does not cast to {column.type}: {exc}")

    def _json(self, payloads: list[bytes]) -> pa.Table:
        joined = b"\n".join(payloads)
        if joined.count(b"\n") != len(payloads) - 1:  # a pretty-printed object: newlines are whitespace
            joined = b"\n".join(p.replace(b"\n", b" ").replace(b"\r", b" ") for p in payloads)
        options = pajson.ReadOptions(block_size=max(1 << 20, len(joined) + 1))
        parse = (pajson.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="ignore")
                 if self.schema is not None else pajson.ParseOptions())
        try:
            table = pajson.read_json(io.BytesIO(joined), read_options=options, parse_options=parse)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ParseError(f"{self.name}: a message is not a JSON object of the stream's columns "
                             f"({exc}); fix the producer, pass schema=, or on_error='skip'") from exc
        if table.num_rows != len(payloads):
            raise ParseError(f"{self.name}: {len(payloads)} messages gave {table.num_rows} JSON rows; "
                             "each message must hold exactly one JSON object")
        if self.schema is None:
            self.schema = pa.schema([f if not pa.types.is_null(f.type) else pa.field(f.name, pa.string())
                                     for f in table.schema])
            table = table.cast(self.schema)
        return table.select(self.schema.names)

    def _csv(self, lines: list[bytes]) -> pa.Table:
        if self.header is None:
            if self.schema is None:
                raise InvalidArgumentError(f"{self.name}: CSV messages need a header line or schema=")
            self.header = list(self.schema.names)
        body = b"\n".join(lines) + b"\n"
        read = pacsv.ReadOptions(column_names=self.header)
        convert = pacsv.ConvertOptions(column_types=self.schema) if self.schema is not None else None
        try:
            table = pacsv.read_csv(io.BytesIO(body), read_options=read,
                                   **({"convert_options": convert} if convert else {}))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ParseError(f"{self.name}: lines do not parse as CSV with the columns {self.header} "
                             f"({exc}); pass schema= or on_error='skip'") from exc
        if self.schema is None:
            self.schema = pa.schema([f if not pa.types.is_null(f.type) else pa.field(f.name, pa.string())
                                     for f in table.schema])
            table = table.cast(self.schema)
        return table

"""XML files: records streamed out of a document of any size, as Arrow tables.

``datakiln.read("feed.xml", record="item")`` reads every ``<item>`` element as one row. The
document is parsed incrementally by expat (see :mod:`datakiln.io._xml_parse`, which says
why expat and how entities are refused), one megabyte at a time, and only the rows of the
batch being built are held, so memory stays bounded on files larger than memory.

Columns: the record's attributes (``@name``), its text-only children (one column each), a
child with attributes or children of its own (JSON text of that element), and a child
repeated within a record (a list column). The columns are the union over the first
``infer_records`` records (a record lacking one gets null); their types are inferred from
the text of those records like the CSV reader does (int64, float64, bool, date32,
timestamp, else string), and ``column_types=`` overrides any of them. A field that is text
in one record and a nested element in another is a :class:`SchemaError` naming both lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import EmptySourceError, InvalidArgumentError, SchemaError
from datakiln.io._files import FileSet, column_type, read_failure, split_compression
from datakiln.io._xml_parse import Nested, RecordPath, iter_records
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

__all__ = ["XmlSource"]

_INT = re.compile(r"[+-]?(0|[1-9]\d*)\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z|[+-]?(inf|nan)\Z", re.I)
_CODE = re.compile(r"[+-]?0\d")
_BOOL = {"true", "false"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?\Z")
_HINT = "pass column_types={%r: 'string'} to keep the text, or infer_records= to look further"


def infer_type(values: Sequence[str]) -> pa.DataType:
    """The Arrow type all ``values`` (non-null text) parse as; string when they differ."""
    if not values or any(_CODE.match(v) for v in values):
        return pa.string()  # leading zeros ('007', zip codes) are codes, kept as text
    if all(_INT.match(v) for v in values) and all(abs(int(v)) < 2 ** 63 for v in values):
        return pa.int64()
    if all(_FLOAT.match(v) for v in values):
        return pa.float64()
    if all(v.lower() in _BOOL for v in values):
        return pa.bool_()
    if all(_DATE.match(v) for v in values):
        return pa.date32()
    if all(_STAMP.match(v) for v in values):
        return pa.timestamp("us")
    return pa.string()


class _Field:
    """What the sample showed of one column: nested or text, list or single, first line."""

    __slots__ = ("name", "nested", "repeated", "line", "texts")

    def __init__(self, name: str, nested: bool | None, line: int) -> None:
        self.name, self.nested, self.line = name, nested, line
        self.repeated = False
        self.texts: list[str] = []


class XmlSource(Source):
    """Records of XML files, streamed.

    Parameters
    ----------
    files : FileSet
        The files, from :func:`datakiln.io._files.resolve_files`; gzip/bz2/zstd work too.
    record : str, optional
        Which elements are rows: a name (``"item"``, at any depth), a path of names
        (``"channel/item"``; ``"/rss/channel/item"`` from the root; ``*`` matches any name).
        Default: every child of the root element.
    namespaces : {"strip", "uri"}
        ``"strip"`` (default) names columns by local name (``<dc:title>`` → ``title``);
        ``"uri"`` keeps the namespace as ``{http://purl.org/dc/elements/1.1/}title``.
        Record paths match either form.
    attribute_prefix : str
        Prefix of attribute columns (default ``"@"``: ``<item id="3">`` → ``@id``); ``""``
        names them like children (an attribute and a child of one name in a record is then
        a :class:`ParseError` naming the line).
    column_types : dict, optional
        ``{column: Arrow type or name}`` instead of the inferred type (list columns take the
        element type); a column named here but absent from the sample is read too.
    infer_records : int
        Records of the first file the columns and types are learnt from (default 1000).
    batch_rows : int
        Rows per Arrow table (default 16,384); bounds memory with the 1 MB parse buffer.
    """

    tasks_are_independent = False

    def __init__(self, files: FileSet, *, record: str | None = None, namespaces: str = "strip",
                 attribute_prefix: str = "@", column_types: Mapping[str, Any] | None = None,
                 infer_records: int = 1000, batch_rows: int = 16_384) -> None:
        super().__init__()
        if namespaces not in ("strip", "uri"):
            raise InvalidArgumentError(f"namespaces must be 'strip' or 'uri', got {namespaces!r}")
        try:
            self.record = RecordPath(record)
        except ValueError:
            raise InvalidArgumentError(
                f"record={record!r} is not a path of element names such as 'item', "
                "'channel/item' or '/rss/channel/item' (predicates and '..' are not "
                "supported)") from None
        if infer_records < 1 or batch_rows < 1:
            raise InvalidArgumentError("infer_records and batch_rows must be at least 1")
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} XML files"
        self.namespaces = namespaces
        self.prefix = attribute_prefix
        self.column_types = dict(column_types or {})
        self.batch_rows = int(batch_rows)
        self._fields = self._sample(files.paths[0], int(infer_records))
        self._schema = self._make_schema()

    # -- inference ----------------------------------------------------------------------------
    def _records(self, path: str) -> Iterator[tuple[int, dict[str, Any], int]]:
        try:
            with self.files.filesystem.open_input_stream(
                    path, compression=split_compression(path)[1]) as stream:
                yield from iter_records(stream, path, self.record, namespaces=self.namespaces,
                                        prefix=self.prefix)
        except (OSError, pa.ArrowException) as exc:
            raise read_failure(path, exc) from exc

    def _sample(self, path: str, limit: int) -> dict[str, _Field]:
        fields: dict[str, _Field] = {}
        count = 0
        records = self._records(path)
        try:
            for line, row, _ in records:
                for name, value in row.items():
                    self._observe(fields, path, line, name, value)
                count += 1
                if count >= limit:
                    break
        finally:
            records.close()
        if count == 0:
            where = f"no element matches record={self.record.text!r}" if self.record.text \
                else "the root element has no children"
            raise EmptySourceError(f"{path!r} holds no records: {where}; pass record= naming "
                                   "the element that is one row (e.g. record='item')")
        for name in self.column_types:
            fields.setdefault(name, _Field(name, None, 0))
        return fields

    def _observe(self, fields: dict[str, _Field], path: str, line: int, name: str,
                 value: Any) -> None:
        values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        field = fields.get(name)
        if field is None:
            field = fields[name] = _Field(name, None, line)
        field.repeated = field.repeated or isinstance(value, list)
        for item in values:
            nested = isinstance(item, Nested)
            if field.nested is None:
                field.nested, field.line = nested, line
            elif nested != field.nested and name not in self.column_types:
                raise SchemaError(self._conflict(path, name, field.nested, field.line, line))
            if not nested:
                field.texts.append(item)

    def _conflict(self, path: str, name: str, was_nested: bool, first: int, line: int) -> str:
        kinds = ("a nested element", "text") if was_nested else ("text", "a nested element")
        return (f"{path!r} line {line}: field {name!r} is {kinds[1]} in this record but "
                f"{kinds[0]} in the record at line {first}; a column holds one kind of value: "
                "fix the file, or pass column_types={%r: 'string'} to read both as text"
                % name)

    def _make_schema(self) -> pa.Schema:
        out = []
        for name, field in self._fields.items():
            if name in self.column_types:
                kind = column_type(name, self.column_types[name])
            elif field.nested:
                kind = pa.string()
            else:
                kind = infer_type(field.texts)
            field.texts = []
            out.append(pa.field(name, pa.list_(kind) if field.repeated else kind))
        return pa.schema(out)

    # -- batches ------------------------------------------------------------------------------
    def _table(self, rows: list[dict[str, Any]], lines: list[int], path: str) -> pa.Table:
        for row, line in zip(rows, lines):
            extra = row.keys() - self._fields.keys()
            if extra:
                name = sorted(extra)[0]
                raise SchemaError(
                    f"{path!r} line {line}: field {name!r} was not in the first records the "
                    "columns were learnt from; pass infer_records= large enough to see it, or "
                    f"column_types={{{name!r}: 'string'}} to declare it")
        arrays = [self._column(field, [row.get(field.name) for row in rows], lines, path)
                  for field in self._schema]
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _column(self, field: pa.Field, values: list[Any], lines: list[int],
                path: str) -> pa.Array:
        info = self._fields[field.name]
        target = field.type.value_type if info.repeated else field.type
        if info.repeated:
            values = [v if v is None or isinstance(v, list) else [v] for v in values]
        else:
            for value, line in zip(values, lines):
                if isinstance(value, list):
                    raise SchemaError(
                        f"{path!r} line {line}: field {field.name!r} is repeated in this "
                        "record but was single in the first records; pass infer_records= "
                        "large enough to see a repeated one")
        if field.name not in self.column_types:
            self._check_kind(field.name, values, lines, path, bool(info.nested))
        text = pa.array(values, pa.list_(pa.string()) if info.repeated else pa.string())
        if info.repeated:
            flat = _convert(text.flatten(), target, field.name, path, lines)
            return pa.ListArray.from_arrays(text.offsets, flat, pa.list_(target),
                                            mask=text.is_null())
        return _convert(text, target, field.name, path, lines)

    def _check_kind(self, name: str, values: list[Any], lines: list[int], path: str,
                    nested: bool) -> None:
        """A value nested where the column is text (or the reverse) names its line."""
        kinds = set(map(type, values))
        if kinds <= ({Nested, type(None)} if nested else {str, type(None)}):
            return  # the common case, checked without a Python loop
        for value, line in zip(values, lines):
            items = value if isinstance(value, list) else [value]
            if any(v is not None and isinstance(v, Nested) != nested for v in items):
                raise SchemaError(self._conflict(path, name, nested, self._fields[name].line,
                                                 line))

    # -- Source API ---------------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        types = sorted((k, str(v)) for k, v in self.column_types.items())
        return (f"xml:{self.files.fingerprint()}:{self.record.text}:{self.namespaces}:"
                f"{self.prefix}:{types}")

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(None, self.files.total_bytes)

    def task_bytes(self) -> int:
        """Bytes one batch holds: rows pass through Python objects (about 1 kB each)."""
        return max(self.batch_rows * 1024, 4 * 1024 * 1024)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        self.stats.reset()
        for path in self.files.paths:
            rows: list[dict[str, Any]] = []
            lines: list[int] = []
            for line, row, _ in self._records(path):
                rows.append(row)
                lines.append(line)
                if len(rows) >= self.batch_rows:
                    table = self._table(rows, lines, path)
                    rows, lines = [], []
                    yield lambda t=table: apply_pushdown(t, columns, filter)
            if rows:
                table = self._table(rows, lines, path)
                yield lambda t=table: apply_pushdown(t, columns, filter)


def _cast(text: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_string(target):
        return text
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(text)
        known = pc.is_in(lowered, value_set=pa.array(["true", "false"]))
        if not pc.all(pc.or_(known, pc.is_null(lowered))).as_py():
            raise pa.ArrowInvalid("not true/false")
        return pc.equal(lowered, "true")
    return pc.cast(text, target)


def _convert(text: pa.Array, target: pa.DataType, name: str, path: str,
             lines: list[int]) -> pa.Array:
    """Cast text to ``target``; a value that does not parse names its record's line."""
    try:
        return _cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for index, value in enumerate(text.to_pylist()):
        try:
            if value is not None:
                _cast(pa.array([value], pa.string()), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            where = f"line {lines[index]}" if len(lines) == len(text) else "a record"
            raise SchemaError(
                f"{path!r} {where}: field {name!r} holds {value[:80]!r}, which is not "
                f"{target} like the first records; " + _HINT % name) from None
    raise SchemaError(f"{path!r}: field {name!r} cannot be read as {target}; " + _HINT % name)

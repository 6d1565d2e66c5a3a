"""Column kinds, inferred from Arrow types plus a bounded sample of values.

A *kind* says how the rest of datakiln treats a column (how to profile, transform,
synthesize and protect it); the Arrow type says how it is stored. Inference only ever
looks at a bounded sample (by default the first 10,000 rows), never the whole data.

Kinds: ``numeric``, ``integer``, ``boolean``, ``categorical``, ``datetime``, ``text``,
``identifier``, ``pii`` (with a ``pii`` sub-type: email, phone, name, address,
credit_card, ip) and ``image`` (encoded image bytes, detected by their magic bytes or
datakiln's field mark; Hugging Face ``{bytes, path}`` structs; ``uint8`` fixed-shape
tensors of decoded pixels). Each column records the *evidence* that decided its kind, so a surprising
choice can be understood and overridden with a dict or a small JSON/YAML file::

    columns:
      zip: categorical
      customer: {kind: pii, pii: name}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import SchemaError

__all__ = ["KINDS", "PII_TYPES", "ColumnSchema", "Schema", "image_evidence", "image_format", "infer_schema",
           "load_overrides", "numeric_values", "refuse_nested"]

KINDS = ("numeric", "integer", "boolean", "categorical", "datetime", "text", "identifier", "pii",
         "image")
PII_TYPES = ("email", "phone", "name", "address", "credit_card", "ip")

#: values looked at per column for pattern checks (after dropping nulls)
PATTERN_SAMPLE = 2_000
#: share of sampled values that must match a pattern for it to count as evidence
MATCH_SHARE = 0.9

_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|pk)$|^(id|uuid|guid)[_\W]|(?<=[a-z])Id$", re.I)
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$")
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_IPV6 = re.compile(r"^[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$", re.I)
_PHONE = re.compile(r"^\+?[\d\s().-]{7,22}$")
_PHONE_FORMAT = re.compile(r"^\+|[\s().-]")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_ADDRESS = re.compile(
    r"^\d+[a-z]?\s+(\w+\s+){0,4}(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|"
    r"way|court|ct|place|pl|square|sq|terrace|parkway|pkwy|highway|hwy)\b",
    re.I,
)
_PERSON = re.compile(r"^[A-Z][a-z'\-]+(\s+[A-Z][a-z'\-]*\.?){0,3}$")
_DATE_TEXT = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_NAME_HINTS = {
    "email": re.compile(r"e-?mail", re.I),
    "phone": re.compile(r"phone|mobile|cell|(^|_)tel($|_)|fax", re.I),
    "name": re.compile(r"^(first|last|full|given|family|middle|sur|maiden|customer|patient|"
                       r"person|contact)?[_ ]?name$|^(surname|forename)$", re.I),
    "address": re.compile(r"address|street|addr($|_)", re.I),
    "credit_card": re.compile(r"card|cc_?num|pan$", re.I),
    "ip": re.compile(r"(^|_)ip(_?addr(ess)?)?($|_)|ipv[46]", re.I),
}


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its ``name``, ``kind``, Arrow ``type``, ``evidence`` and ``pii`` sub-type."""

    name: str
    kind: str
    type: pa.DataType
    evidence: tuple[str, ...] = ()
    pii: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form: ``{"name", "kind", "type", "pii", "evidence"}``."""
        return {"name": self.name, "kind": self.kind, "type": str(self.type), "pii": self.pii,
                "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Schema:
    """The columns of a dataset with their kinds, in order; index by name or position."""

    columns: tuple[ColumnSchema, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[ColumnSchema]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, key: str | int) -> ColumnSchema:
        if isinstance(key, int):
            return self.columns[key]
        for column in self.columns:
            if column.name == key:
                return column
        raise SchemaError(f"no column named {key!r}; the columns are {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(column.name == name for column in self.columns)

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [column.name for column in self.columns]

    @property
    def kinds(self) -> dict[str, str]:
        """``{column name: kind}``."""
        return {column.name: column.kind for column in self.columns}

    @property
    def arrow(self) -> pa.Schema:
        """The Arrow schema these columns are stored with."""
        return pa.schema([pa.field(column.name, column.type) for column in self.columns])

    def of_kind(self, *kinds: str) -> list[str]:
        """Names of the columns whose kind is one of ``kinds``."""
        return [column.name for column in self.columns if column.kind in kinds]

    def to_dict(self) -> list[dict[str, Any]]:
        """Plain data: one dict per column (see :meth:`ColumnSchema.to_dict`)."""
        return [column.to_dict() for column in self.columns]

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.name}: {c.kind}" for c in self.columns)
        return f"Schema({inner})"


def load_overrides(overrides: Mapping[str, Any] | str | Path | None) -> dict[str, dict[str, Any]]:
    """Normalise kind overrides from a dict or a JSON/YAML file to ``{column: {"kind", "pii"}}``.

    Accepted shapes: ``{"col": "kind"}``, ``{"col": {"kind": ..., "pii": ...}}``, either one
    optionally under a top-level ``"columns"`` key.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, (str, Path)):
        overrides = _read_override_file(Path(overrides))
    if not isinstance(overrides, Mapping):
        raise SchemaError(f"schema overrides must be a mapping of column to kind, got {overrides!r}")
    if "columns" in overrides and isinstance(overrides["columns"], Mapping):
        overrides = overrides["columns"]
    result: dict[str, dict[str, Any]] = {}
    for name, spec in overrides.items():
        entry = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
        kind, pii = entry.get("kind"), entry.get("pii")
        if kind not in KINDS:
            raise SchemaError(f"column {name!r}: unknown kind {kind!r}; choose one of {KINDS}")
        if pii is not None and (kind != "pii" or pii not in PII_TYPES):
            raise SchemaError(
                f"column {name!r}: 'pii' sub-type {pii!r} needs kind 'pii' and one of {PII_TYPES}"
            )
        result[str(name)] = {"kind": kind, "pii": pii}
    return result


def _read_override_file(path: Path) -> Any:
    if not path.is_file():
        raise SchemaError(f"schema override file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # yaml and json raise different types; report both the same way
        raise SchemaError(f"schema override file {str(path)!r} is not valid: {exc}") from exc


def infer_schema(
    sample: pa.Table, overrides: Mapping[str, Any] | str | Path | None = None
) -> Schema:
    """Infer each column's kind from ``sample`` (a bounded slice of the data).

    ``overrides`` (dict or JSON/YAML path, see :func:`load_overrides`) win over inference;
    naming a column the sample lacks raises :class:`SchemaError`.

    >>> infer_schema(pa.table({"age": [31, 45], "email": ["a@b.io", "c@d.org"]})).kinds
    {'age': 'integer', 'email': 'pii'}
    """
    forced = load_overrides(overrides)
    unknown = sorted(set(forced) - set(sample.column_names))
    if unknown:
        raise SchemaError(
            f"schema overrides name columns that do not exist: {unknown}; "
            f"the columns are {sample.column_names}"
        )
    columns = []
    for name in sample.column_names:
        column = sample.column(name)
        if name in forced:
            spec = forced[name]
            plain = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            numeric = pa.types.is_integer(plain) or pa.types.is_floating(plain) or pa.types.is_decimal(plain)
            if spec["kind"] in ("numeric", "integer") and not (numeric or pa.types.is_null(plain)):
                raise SchemaError(
                    f"column {name!r}: kind {spec['kind']!r} needs numbers, but the column holds {plain} "
                    f"values (e.g. {column.drop_null()[:3].to_pylist()}); choose 'categorical' or "
                    f"'text', or convert the column to numbers first")
            columns.append(ColumnSchema(name, spec["kind"], column.type, ("override",), spec["pii"]))
        else:
            image = image_evidence(sample.schema.field(name), column)
            columns.append(ColumnSchema(name, "image", column.type, (image,)) if image
                           else _infer_column(name, column))
    return Schema(tuple(columns))


def image_format(data: bytes) -> str | None:
    """Name the image format from the first bytes of ``data``, or ``None`` if not an image.

    Only magic bytes are looked at (a dozen bytes are enough); nothing is validated.
    """
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM") and len(head) >= 16:
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _is_binary(dtype: pa.DataType) -> bool:
    return (pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype)
            or pa.types.is_fixed_size_binary(dtype) or pa.types.is_binary_view(dtype))


def _is_hf_image(dtype: pa.DataType) -> bool:
    """A Hugging Face ``Image`` feature: ``struct<bytes: binary, path: string>``."""
    if not pa.types.is_struct(dtype) or dtype.num_fields != 2:
        return False
    fields = {dtype.field(i).name: dtype.field(i).type for i in range(dtype.num_fields)}
    return set(fields) == {"bytes", "path"} and _is_binary(fields["bytes"])


def _is_pixel_tensor(dtype: pa.DataType) -> bool:
    return (isinstance(dtype, pa.FixedShapeTensorType) and dtype.value_type == pa.uint8()
            and len(dtype.shape) in (2, 3))


def image_evidence(field: pa.Field, column: pa.ChunkedArray | pa.Array | None = None) -> str | None:
    """Why ``field`` holds images (the evidence text), or ``None``.

    Image columns are: ``uint8`` fixed-shape tensors (decoded pixels, e.g. IDX files);
    binary columns datakiln marked as images, or whose sampled values start with image
    magic bytes (JPEG, PNG, GIF, BMP, WebP, TIFF); Hugging Face ``{bytes, path}`` structs.
    """
    dtype = field.type
    if _is_pixel_tensor(dtype):
        return f"uint8 pixel tensor of shape {list(dtype.shape)}"
    if _is_binary(dtype) and field.metadata and field.metadata.get(b"datakiln.kind") == b"image":
        return "encoded images (datakiln's image column)"
    values = None
    if _is_hf_image(dtype):
        if column is None:
            return "Hugging Face image struct {bytes, path}"
        values = pc.struct_field(column, "bytes")
    elif _is_binary(dtype) and column is not None:
        values = column
    if values is None:
        return None
    head = [v for v in values.drop_null().slice(0, 200).to_pylist() if v]
    if not head:
        return "Hugging Face image struct {bytes, path}" if _is_hf_image(dtype) else None
    formats = [image_format(v) for v in head]
    found = sorted({f for f in formats if f})
    if sum(f is not None for f in formats) >= MATCH_SHARE * len(head):
        what = "Hugging Face image struct {bytes, path}" if _is_hf_image(dtype) else "binary values"
        return f"{what}: sampled values are {'/'.join(found)} images (magic bytes)"
    return None


def _infer_column(name: str, column: pa.ChunkedArray) -> ColumnSchema:
    kind_type = column.type
    if pa.types.is_dictionary(kind_type):
        return ColumnSchema(name, "categorical", kind_type, ("dictionary-encoded values",))
    values = column.drop_null()
    if pa.types.is_boolean(kind_type):
        return ColumnSchema(name, "boolean", kind_type, ("Arrow boolean type",))
    if pa.types.is_temporal(kind_type):
        return ColumnSchema(name, "datetime", kind_type, (f"Arrow temporal type {kind_type}",))
    if pa.types.is_integer(kind_type):
        return _infer_integer(name, values, kind_type)
    if pa.types.is_floating(kind_type) or pa.types.is_decimal(kind_type):
        return ColumnSchema(name, "numeric", kind_type, (f"Arrow numeric type {kind_type}",))
    if pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type):
        return _infer_string(name, values, kind_type)
    if pa.types.is_null(kind_type):
        return ColumnSchema(name, "categorical", kind_type, ("no non-null values in the sample",))
    return ColumnSchema(name, "text", kind_type, (f"other Arrow type {kind_type}",))


def _infer_integer(name: str, values: pa.ChunkedArray, dtype: pa.DataType) -> ColumnSchema:
    n = len(values)
    # card numbers without separators parse as integers; they are PII all the same
    digits = [str(v) for v in values.slice(0, PATTERN_SAMPLE).to_pylist()]
    if (digits and (n >= 10 or _NAME_HINTS["credit_card"].search(name))
            and _share(digits, lambda v: 13 <= len(v) <= 19 and _luhn(v)) >= MATCH_SHARE):
        return ColumnSchema(name, "pii", dtype, ("values are Luhn-valid card numbers",), "credit_card")
    if n >= 20 and _ID_NAME.search(name) and pc.count_distinct(values).as_py() == n:
        return ColumnSchema(name, "identifier", dtype, ("name looks like an id", "values unique"))
    if n >= 100:
        try:
            diffs = pc.pairwise_diff(values.combine_chunks())
            sequence = pc.all(pc.equal(diffs.slice(1), 1)).as_py()
        except pa.ArrowInvalid:  # uint64 past 2**63: its differences leave int64, so no sequence
            sequence = False
        if sequence:
            return ColumnSchema(name, "identifier", dtype, ("values are a consecutive sequence",))
    return ColumnSchema(name, "integer", dtype, (f"Arrow integer type {dtype}",))


def _share(values: list[str], test: Any) -> float:
    return sum(1 for value in values if test(value)) / len(values) if values else 0.0


def _luhn(text: str) -> bool:
    digits = [int(ch) for ch in text if ch.isdigit()]
    checksum = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return checksum % 10 == 0


def _pii_from_values(name: str, values: list[str]) -> tuple[str, str] | None:
    """Return ``(pii type, evidence)`` when the sampled values match a PII pattern."""
    checks = [
        ("email", lambda v: _EMAIL.match(v) is not None, "values look like e-mail addresses"),
        ("ip", lambda v: _IPV4.match(v) is not None or (":" in v and _IPV6.match(v) is not None),
         "values look like IP addresses"),
        ("credit_card", lambda v: _CARD.match(v) is not None and _luhn(v),
         "values are Luhn-valid card numbers"),
        ("address", lambda v: _ADDRESS.match(v) is not None, "values look like street addresses"),
    ]
    for pii, test, why in checks:
        if _share(values, test) >= MATCH_SHARE:
            return pii, why
    phone_hint = _NAME_HINTS["phone"].search(name) is not None
    if _share(values, lambda v: _PHONE.match(v) is not None and 7 <= sum(c.isdigit() for c in v) <= 15
              and (phone_hint or _PHONE_FORMAT.search(v) is not None)) >= MATCH_SHARE:
        return "phone", "values look like phone numbers"
    if _NAME_HINTS["name"].search(name) and _share(values, lambda v: _PERSON.match(v)) >= MATCH_SHARE:
        return "name", "column name and capitalised values look like person names"
    return None


def _infer_string(name: str, values: pa.ChunkedArray, dtype: pa.DataType) -> ColumnSchema:
    n = len(values)
    head = values.slice(0, PATTERN_SAMPLE).to_pylist()
    found = _pii_from_values(name, head)
    if found:
        return ColumnSchema(name, "pii", dtype, (found[1],), found[0])
    for pii, hint in _NAME_HINTS.items():
        if pii in ("address", "name") and hint.search(name) and n:
            return ColumnSchema(name, "pii", dtype, (f"column name suggests {pii}",), pii)
    distinct = pc.count_distinct(values).as_py() if n else 0
    if head and _share(head, lambda v: _UUID.match(v) is not None) >= MATCH_SHARE:
        return ColumnSchema(name, "identifier", dtype, ("values look like UUIDs",))
    if n >= 20 and distinct == n and _ID_NAME.search(name):
        return ColumnSchema(name, "identifier", dtype, ("name looks like an id", "values unique"))
    if head and _share(head, lambda v: _DATE_TEXT.match(v) is not None) >= MATCH_SHARE:
        return ColumnSchema(name, "datetime", dtype, ("text values look like dates",))
    mean_length = pc.mean(pc.utf8_length(values)).as_py() if n else 0.0
    mean_words = (sum(len(v.split()) for v in head) / len(head)) if head else 0.0
    if n and distinct > 0.5 * n and (mean_length >= 30 or mean_words >= 4):
        return ColumnSchema(name, "text", dtype,
                            (f"{distinct} distinct of {n}", f"mean length {mean_length:.0f}"))
    if n >= 20 and distinct == n and " " not in "".join(head[:100]):
        return ColumnSchema(name, "identifier", dtype, (f"all {n} sampled values unique",))
    if n >= 20 and distinct > 0.5 * n:
        return ColumnSchema(name, "text", dtype, (f"{distinct} distinct of {n} sampled values",))
    return ColumnSchema(name, "categorical", dtype, (f"{distinct} distinct of {n} sampled values",))


def numeric_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric, decimal or temporal column as float64 (datetimes as integer ticks); nulls are NaN.

    Integer ticks beyond 2**53 (any nanosecond timestamp of this century) are rounded to the
    nearest float64 (a relative error below 1.2e-16, ~0.2 µs for today's nanosecond ticks):
    Arrow's default *safe* cast refuses them instead, which is why the cast is unsafe here.
    """
    dtype = column.type
    if pa.types.is_temporal(dtype):
        storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
        column = pc.cast(pc.cast(column, storage), pa.int64())
    return np.asarray(pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def refuse_nested(schema: pa.Schema, what: str, fix: str = "select the other columns "
                  "(ds.select([...])) or flatten them into plain columns first") -> None:
    """Raise :class:`SchemaError` naming every nested column (list, struct, map, union) of
    ``schema``, for work (``what``) that handles flat columns only; ``fix`` says what to do."""
    images = [f"{f.name!r}" for f in schema if _is_pixel_tensor(f.type) or _is_hf_image(f.type)
              or _is_binary(f.type) or isinstance(f.type, pa.BaseExtensionType)]
    if images:
        raise SchemaError(
            f"{what} handles flat columns of numbers, text, categories and times; "
            f"{', '.join(images)} {'holds' if len(images) == 1 else 'hold'} images or other "
            "binary values: select the other columns (ds.select([...])); images are decoded "
            "and augmented by the loader (ds.loader(..., transform=...))")
    nested = [f"{f.name!r} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise SchemaError(f"{what} handles flat columns; {', '.join(nested)} "
                          f"{'holds' if len(nested) == 1 else 'hold'} nested values (lists, structs "
                          f"or maps): {fix}")

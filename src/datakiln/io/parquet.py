"""Parquet reader: files, directories and hive partitions, one read task per row group.

Column selection and filters are pushed into Arrow's scanner, so only the needed columns
and row groups are decoded; row counts come from file metadata without reading data.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from datakiln.errors import DecryptionError, ParseError, SchemaMismatchError
from datakiln.io._files import FileSet
from datakiln.io._output import MANIFEST, PARQUET_MARK
from datakiln.io.base import ReadTask, SizeEstimate, Source

__all__ = ["ParquetSource", "open_arrow_dataset", "partition_schema_entry"]

PARTITION_SCHEMA = "partition_schema"


def _parsable(dtype: pa.DataType) -> pa.DataType:
    """The type a hive partition column is read back as: its own where Arrow parses the
    directory text exactly, else its dictionary's value type, else text."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if (pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_integer(dtype)
            or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype) or pa.types.is_date(dtype)
            or pa.types.is_timestamp(dtype) or pa.types.is_time(dtype)):
        return dtype
    return pa.string()


def partition_schema_entry(schema: pa.Schema, keys: Sequence[str]) -> dict[str, Any]:
    """The manifest entry that keeps hive partition columns' types (``{}`` without keys).

    A ``key=value`` directory holds text only: without it a string code ``"007"`` read back
    as the integer 7 (merged with ``"7"``), and dates and booleans as strings."""
    if not keys:
        return {}
    fields = pa.schema([pa.field(k, _parsable(schema.field(k).type)) for k in keys])
    return {PARTITION_SCHEMA: base64.b64encode(fields.serialize().to_pybytes()).decode("ascii")}


def _recorded_partitioning(files: FileSet) -> pads.Partitioning | None:
    """Hive partitioning with the types datakiln's manifest recorded, or None."""
    if not files.base:
        return None
    try:
        with files.filesystem.open_input_stream(f"{files.base.rstrip('/')}/{MANIFEST}") as stream:
            text = json.loads(stream.read().decode("utf-8")).get(PARTITION_SCHEMA)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text, validate=True)))
    except (OSError, ValueError, TypeError, AttributeError, pa.ArrowInvalid):
        return None  # no manifest, or none of datakiln's: Arrow infers the types
    return pads.partitioning(schema, flavor="hive")


def open_arrow_dataset(files: FileSet, format: str | pads.FileFormat,
                       partitioning: str | pads.Partitioning | None) -> pads.Dataset:
    """An Arrow dataset over ``files``; files whose schemas disagree raise a clear error."""
    try:
        dataset = pads.dataset(list(files.paths), filesystem=files.filesystem, format=format,
                               partitioning=partitioning, partition_base_dir=files.base)
        fragments = list(dataset.get_fragments())
        first = fragments[0].physical_schema
        for fragment in fragments[1:]:
            theirs = fragment.physical_schema
            if not theirs.equals(first):
                raise SchemaMismatchError(
                    f"{fragment.path!r} has columns {_describe(theirs)} but {fragments[0].path!r} "
                    f"has {_describe(first)}; files read together must share their schema")
    except (pa.ArrowInvalid, OSError, DecryptionError) as exc:
        if isinstance(exc, SchemaMismatchError):
            raise
        _raise_if_encrypted(exc, files.paths[0])
        name = format if isinstance(format, str) else format.type_name
        raise ParseError(f"cannot read {files.paths[0]!r} as {name}: {exc}") from exc
    return dataset


def _raise_if_encrypted(exc: BaseException, path: str) -> None:
    """A DecryptionError for an encrypted Parquet file read without (or with the wrong) key."""
    text = str(exc)
    if isinstance(exc, DecryptionError):  # datakiln's KMS client, passed through by pyarrow
        raise DecryptionError(f"cannot decrypt {path!r}: {text}") from None
    if "DecryptionError: " in text:  # raised by datakiln's KMS client inside pyarrow
        detail = text.split("DecryptionError: ", 1)[1].splitlines()[0]
        raise DecryptionError(f"cannot decrypt {path!r}: {detail}") from exc
    if "no decryption found" in text or "FileDecryption is not setup" in text or (
            "encrypted" in text.lower() and "decrypt" in text.lower()):
        raise DecryptionError(
            f"{path!r} is an encrypted Parquet file: pass decryption=DecryptionConfig(key_file=...) "
            "(from datakiln.privacy) to datakiln.read") from exc


def _without_mark(dataset: pads.Dataset) -> pads.Dataset:
    """``dataset`` with datakiln's output mark left out of its schema metadata.

    The mark (``datakiln.output``) says a file is datakiln's own output; carried into the
    tables read, a table then written with pyarrow directly would wear it too, and datakiln
    would take that file for its own (and replace it without ``overwrite=True``).
    """
    metadata = dataset.schema.metadata
    if not metadata or PARQUET_MARK.encode() not in metadata:
        return dataset
    kept = {k: v for k, v in metadata.items() if k != PARQUET_MARK.encode()}
    schema = dataset.schema.with_metadata(kept) if kept else dataset.schema.remove_metadata()
    return dataset.replace_schema(schema)


def _describe(schema: pa.Schema) -> str:
    return "[" + ", ".join(f"{f.name}: {f.type}" for f in schema) + "]"


class ParquetSource(Source):
    """Parquet files sharing one schema; ``partitioning="hive"`` reads ``key=value`` dirs."""

    def __init__(self, files: FileSet, *, partitioning: str | None = "hive", decryption: Any = None) -> None:
        super().__init__()
        self.files = files
        self.name = files.base or (files.paths[0] if len(files.paths) == 1
                                   else f"{len(files.paths)} Parquet files")
        recorded = _recorded_partitioning(files) if partitioning == "hive" else None
        # decryption: a datakiln.privacy.DecryptionConfig (only its parquet_file_format() is used)
        format = "parquet" if decryption is None else decryption.parquet_file_format()
        self.dataset = _without_mark(open_arrow_dataset(files, format, recorded or partitioning))

    @property
    def schema(self) -> pa.Schema:
        return self.dataset.schema

    def fingerprint(self) -> str:
        return f"parquet:{self.files.fingerprint()}"

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(self.count_rows(), self.files.total_bytes, exact=True)

    def task_bytes(self) -> int:
        """Largest uncompressed row group (checked in at most 64 files' metadata)."""
        largest = 0
        for fragment in list(self.dataset.get_fragments())[:64]:
            metadata = fragment.metadata
            for index in range(metadata.num_row_groups):
                largest = max(largest, metadata.row_group(index).total_byte_size)
        return max(largest, 1024 * 1024)

    def count_rows(self) -> int:
        return int(self.dataset.count_rows())

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        schema = self.dataset.schema
        for fragment in self.dataset.get_fragments(filter=filter):
            for piece in fragment.split_by_row_group(filter=filter, schema=schema):
                yield self._task(piece, schema, columns, filter)

    def _task(self, piece: pads.Fragment, schema: pa.Schema, columns: Sequence[str] | None,
              filter: pc.Expression | None) -> ReadTask:
        def task() -> pa.Table:
            try:
                return piece.to_table(schema=schema, columns=None if columns is None
                                      else list(columns), filter=filter, use_threads=False)
            except (pa.ArrowInvalid, OSError, DecryptionError) as exc:
                _raise_if_encrypted(exc, piece.path)
                raise ParseError(f"cannot read {piece.path!r}: {exc}") from exc
        return task

    def read_all(self, columns: Sequence[str] | None = None,
                 filter: pc.Expression | None = None) -> pa.Table:
        """Arrow's multi-threaded scanner over all files at once."""
        try:
            return self.dataset.to_table(columns=None if columns is None else list(columns),
                                         filter=filter)
        except (pa.ArrowInvalid, OSError, DecryptionError) as exc:
            for fragment in self.dataset.get_fragments():  # name the file that fails
                try:
                    fragment.to_table(schema=self.dataset.schema, columns=None if columns is None
                                      else list(columns), filter=filter)
                except (pa.ArrowInvalid, OSError, DecryptionError) as inner:
                    _raise_if_encrypted(inner, fragment.path)
                    raise ParseError(f"cannot read {fragment.path!r}: {inner}") from exc
            raise ParseError(f"cannot read {self.name!r}: {exc}") from exc

"""Atomic writers: Parquet (zstd), CSV and JSON Lines, one file or partitioned shards.

Everything is written under a temporary name beside the target and swapped into place at
the end, so a crash leaves the previous output or the new one, never a half-written one or
a mix. datakiln replaces only its own earlier output (a directory with its manifest
``_datakiln.json``, a Parquet file with its footer mark); a file it did not write needs
``overwrite=True``; a directory holding files it did not write, or an input, is refused
(:mod:`datakiln.io._output` has the rules, the commit and the clean-up after killed writers).

Reports and model files follow the same rules through :func:`write_file_atomic` and
:func:`write_text_atomic`: an existing file is replaced only if datakiln wrote it (a JSON
report's ``"datakiln"`` marker key, an HTML report's generator tag, a model file's
manifest) or with ``overwrite=True``, and never when it is one of ``inputs``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import logging
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datakiln.errors import (
    DatakilnError,
    InvalidArgumentError,
    OutputExistsError,
    SchemaError,
    UnsupportedFormatError,
    WriteError,
)
from datakiln.io._output import (
    PARQUET_MARK,
    TempOutput,
    check_inputs,
    check_target,
    commit,
    generator_meta,
    is_own_parquet,
    is_own_report,
    recover,
    report_marker,
    source_inputs,
    test_pause,
    write_manifest,
)
from datakiln.io.objectstore import RemoteOutput, check_remote_output, is_remote
from datakiln.io.parquet import partition_schema_entry
from datakiln.schema import refuse_nested

log = logging.getLogger(__name__)
__all__ = ["WRITE_FORMATS", "MultiWriter", "WriteResult", "check_output", "format_for", "generator_meta",
           "is_own_report", "recover_output", "report_marker", "source_inputs", "write_file_atomic",
           "write_tables", "write_text_atomic"]

#: put back or remove what killed writers of a target left (see :func:`datakiln.io._output.recover`)
recover_output = recover

WRITE_FORMATS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}


@dataclass
class WriteResult:
    """What a write produced: ``path``, the ``files`` in it, ``rows`` and ``bytes`` written."""

    path: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class _FileWriter:
    """One output file of one format."""

    def __init__(self, path: Path, schema: pa.Schema, format: str, compression: str,
                 encryption: Any = None, opener: Callable[[Path], Any] | None = None) -> None:
        self.path = path
        self._sealed: Any = None  # the encrypting stream of a CSV / JSON Lines file
        # an object-store upload (objectstore.RemoteOutput.open), or None for a local file
        self._stream: Any = opener(path) if opener is not None else None
        sink: Any = self._stream if self._stream is not None else str(path)
        if format == "parquet":
            props = {} if encryption is None else {
                "encryption_properties": encryption.parquet_properties(schema)}
            self._writer: Any = pq.ParquetWriter(sink, schema, compression=compression, **props)
            return
        if encryption is not None:  # sealed as written: no plaintext ever reaches the disk
            raw = self._stream if self._stream is not None else open(path, "wb")  # noqa: SIM115
            self._sealed = encryption.wrap_stream(raw)  # closed in close()
        if format == "csv":
            self._writer = pacsv.CSVWriter(self._sealed if self._sealed is not None else sink, schema)
        elif self._sealed is not None:
            self._writer = io.TextIOWrapper(io.BufferedWriter(self._sealed), encoding="utf-8")
        elif self._stream is not None:
            self._writer = io.TextIOWrapper(self._stream, encoding="utf-8", write_through=True)
        else:
            self._writer = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, table: pa.Table) -> None:
        if isinstance(self._writer, (pq.ParquetWriter, pacsv.CSVWriter)):
            self._writer.write_table(table)
            return
        lines = (json.dumps(row, default=_json_default, ensure_ascii=False)
                 for row in table.to_pylist())
        self._writer.write("\n".join(lines) + ("\n" if table.num_rows else ""))

    def close(self) -> None:
        if isinstance(self._writer, pq.ParquetWriter):  # the mark that says datakiln wrote it
            self._writer.add_key_value_metadata({PARQUET_MARK: json.dumps({"version": 1})})
        self._writer.close()
        if self._sealed is not None:
            self._sealed.close()  # seals the final chunk
        if self._stream is not None:
            self._stream.close()  # completes the upload


class _Shards:
    """Rolling files ``part-00000.ext`` in one directory, ``rows_per_file`` rows each."""

    def __init__(self, directory: Path, schema: pa.Schema, format: str, compression: str,
                 rows_per_file: int | None, single: Path | None = None, encryption: Any = None,
                 opener: Callable[[Path], Any] | None = None) -> None:
        self.directory, self.schema, self.format, self.encryption = directory, schema, format, encryption
        self.opener = opener
        self.compression, self.rows_per_file, self.single = compression, rows_per_file, single
        self.files: list[Path] = []
        self._current: _FileWriter | None = None
        self._rows_in_current = 0

    def _open(self) -> _FileWriter:
        if self.single is not None:
            path = self.single
        else:
            if self.opener is None:
                self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"part-{len(self.files):05d}{WRITE_FORMATS[self.format]}"
        self.files.append(path)
        self._rows_in_current = 0
        return _FileWriter(path, self.schema, self.format, self.compression, self.encryption,
                           self.opener)

    def write(self, table: pa.Table) -> None:
        while True:
            if self._current is None:
                self._current = self._open()
            room = (self.rows_per_file - self._rows_in_current) if self.rows_per_file else table.num_rows
            piece = table.slice(0, room)
            self._current.write(piece)
            self._rows_in_current += piece.num_rows
            table = table.slice(piece.num_rows)
            if self.rows_per_file and self._rows_in_current >= self.rows_per_file:
                self._current.close()
                self._current = None
            if table.num_rows == 0:
                return

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        elif not self.files:  # nothing written: still leave a valid, empty file
            self._open().close()


def _partition_dir(keys: Sequence[str], values: Sequence[Any]) -> str:
    parts = []
    for key, value in zip(keys, values):
        text = ("__HIVE_DEFAULT_PARTITION__" if value is None else str(value).lower()
                if isinstance(value, bool) else str(value))
        parts.append(f"{key}={urllib.parse.quote(text, safe='')}")
    return os.path.join(*parts)


def _split_partitions(table: pa.Table, keys: Sequence[str]) -> Iterator[tuple[tuple[Any, ...], pa.Table]]:
    groups = table.select(list(keys)).group_by(list(keys), use_threads=False).aggregate([])
    for combo in groups.to_pylist():
        mask = None
        for key in keys:
            value = combo[key]
            test = pc.is_null(table[key]) if value is None else pc.equal(table[key], value)
            mask = test if mask is None else pc.and_(mask, test)
        yield tuple(combo[k] for k in keys), table.filter(mask).drop_columns(list(keys))


_ENDINGS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".xz", ".zip", ".lz4", ".snappy")
_READ_ONLY_ENDINGS = (".tsv", ".tab", ".arrow", ".feather", ".ipc")


def format_for(path: str | os.PathLike[str], format: str | None = None) -> str:
    """``format`` when given, else the one the path's ending names (``.csv``, ``.jsonl``,
    ``.parquet`` ...), else ``"parquet"``."""
    if format is not None:
        return format.lower()
    return _ENDINGS.get(Path(os.fspath(path)).suffix.lower(), "parquet")


def _check_ending(path: str | os.PathLike[str], format: str) -> None:
    """Refuse an output whose name says another format than the one written: Parquet bytes
    in ``out.csv`` fail every CSV reader later (and datakiln's own re-read at once)."""
    name = Path(os.fspath(path)).name.lower()
    if name.endswith(_COMPRESSED):
        raise InvalidArgumentError(
            f"{os.fspath(path)!r} names a compressed file, but datakiln does not compress CSV or "
            "JSON Lines outputs (Parquet is compressed inside): drop the ending, or compress the "
            "file afterwards")
    suffix = Path(name).suffix
    if suffix in _READ_ONLY_ENDINGS:
        raise InvalidArgumentError(
            f"{os.fspath(path)!r} ends in {suffix}, a format datakiln reads but does not write; "
            "name the output .parquet, .csv (comma-separated) or .jsonl")
    named = _ENDINGS.get(suffix)
    if named is not None and named != format:
        raise InvalidArgumentError(
            f"{os.fspath(path)!r} ends in {Path(name).suffix} but the format written is {format}; "
            f"pass format={named!r} (--to {named}) or name the output for {format}")


def _target(path: str | os.PathLike[str]) -> Path:
    if is_remote(path):
        raise UnsupportedFormatError(
            f"this output cannot go to a URL yet: {os.fspath(path)!r}; datasets (Dataset.write, "
            "kiln convert/clean/balance/synth --out), splits and tar shards can; write this one "
            "locally and upload it")
    return Path(os.fspath(path).removeprefix("file://")).expanduser().absolute()


def _check_remote_inputs(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an object-store output that is, contains or lies inside an input URL."""
    output = os.fspath(path).rstrip("/")
    for item in inputs:
        source = os.fspath(item).rstrip("/")
        if not is_remote(source):
            continue
        if source == output or source.startswith(output + "/") or output.startswith(source + "/"):
            raise OutputExistsError(
                f"the output {output!r} overlaps the input {source!r}; writing there would destroy "
                "or mix with the data being read. Choose another output prefix")


def _prepare(target: Path, *, directory: bool, overwrite: bool,
             inputs: Iterable[str | os.PathLike[str]],
             is_own: Callable[[Path], bool] = is_own_parquet) -> TempOutput:
    """Check the target, tidy after killed writers, and open a locked temporary output."""
    check_inputs(target, inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        check_target(target, directory=directory, overwrite=overwrite, is_own=is_own)
        return TempOutput(target, directory=directory)
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc


def check_output(path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (),
                 directory: bool = False, overwrite: bool = False,
                 is_own: Callable[[Path], bool] = is_own_parquet) -> None:
    """Raise :class:`~datakiln.errors.OutputExistsError` now if writing ``path`` will be
    refused (checked again when written); lets long jobs fail before the work. ``is_own``
    recognises datakiln's own file (a marked Parquet file; :func:`is_own_report` for
    reports)."""
    if is_remote(path) and is_own is is_own_parquet:
        _check_remote_inputs(path, inputs)
        check_remote_output(os.fspath(path), directory=directory, overwrite=overwrite)
        return
    target = _target(path)
    check_inputs(target, inputs)
    if is_own is not is_own_parquet:
        _refuse_directory(target)
    check_target(target, directory=directory, overwrite=overwrite, is_own=is_own)


def write_tables(
    tables: Iterator[pa.Table],
    schema: pa.Schema,
    path: str | os.PathLike[str],
    *,
    format: str = "parquet",
    partition_by: Sequence[str] | None = None,
    rows_per_file: int | None = None,
    compression: str = "zstd",
    on_progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    encryption: Any = None,
) -> WriteResult:
    """Write ``tables`` to ``path`` atomically and return a :class:`WriteResult`.

    One file when neither ``partition_by`` nor ``rows_per_file`` is given; otherwise a
    directory of ``part-NNNNN`` files (hive ``key=value`` sub-directories per partition)
    and the manifest ``_datakiln.json``. ``on_progress(rows)`` is called after each table
    with the rows just written.

    datakiln's own earlier output at ``path`` is replaced; a file it did not write only
    with ``overwrite=True``; a directory holding files it did not write, or a path that is
    or contains one of ``inputs`` (local paths being read), raises
    :class:`~datakiln.errors.OutputExistsError` before anything is written.

    ``encryption`` (a :class:`datakiln.privacy.EncryptionConfig`) encrypts every file:
    Parquet with modular encryption, CSV and JSON Lines in the AES-GCM envelope.
    """
    format = format.lower()
    if format not in WRITE_FORMATS:
        raise UnsupportedFormatError(f"cannot write format {format!r}; choose one of "
                                     f"{sorted(WRITE_FORMATS)}")
    if rows_per_file is not None and not 0 < rows_per_file < 2**62:
        raise InvalidArgumentError(f"rows_per_file must be positive (and below 2**62), got {rows_per_file}")
    if format == "csv":
        refuse_nested(schema, "CSV output", "write Parquet or JSON Lines (--to parquet / jsonl), "
                      "or select the other columns")
    keys = list(partition_by or [])
    if not keys and rows_per_file is None:  # one file: its name must not say another format
        _check_ending(path, format)
    missing = [k for k in keys if k not in schema.names]
    if missing:
        raise SchemaError(f"partition_by names unknown columns {missing}; the columns are "
                          f"{schema.names}")
    as_directory = bool(keys) or rows_per_file is not None
    remote: RemoteOutput | None = None
    if is_remote(path):
        _check_remote_inputs(path, inputs)
        remote = RemoteOutput(os.fspath(path), directory=as_directory, overwrite=overwrite)
        target: Any = remote.url
        temp_output: Any = remote
        temp = remote.path
    else:
        target = _target(path)
        temp_output = _prepare(target, directory=as_directory, overwrite=overwrite, inputs=inputs)
        temp = temp_output.path
    file_schema = pa.schema([f for f in schema if f.name not in keys])
    shards: dict[tuple[Any, ...], _Shards] = {}
    result = WriteResult(str(target))

    def shard(key: tuple[Any, ...]) -> _Shards:
        if key not in shards:
            where = temp / _partition_dir(keys, key).replace(os.sep, "/") if keys else temp
            shards[key] = _Shards(where, file_schema, format, compression, rows_per_file,
                                  single=None if as_directory else temp, encryption=encryption,
                                  opener=remote.open if remote is not None else None)
        return shards[key]

    try:
        for table in tables:
            if keys:
                for key, part in _split_partitions(table, keys):
                    shard(key).write(part)
            else:
                shard(()).write(table)
            if not result.rows:
                test_pause("write")
            result.rows += table.num_rows
            if on_progress is not None:
                on_progress(table.num_rows)
        if not shards and not keys:
            shard(())
        for writer in shards.values():
            writer.close()
        files = [p for s in shards.values() for p in s.files]
        if remote is not None:
            result.files = remote.commit(format=format, rows=result.rows,
                                         extra=partition_schema_entry(schema, keys))
            result.bytes = remote.bytes
        else:
            if as_directory:
                write_manifest(temp, files, format=format, rows=result.rows,
                               extra=partition_schema_entry(schema, keys))
            commit(temp_output, directory=as_directory, overwrite=overwrite)
    except BaseException as exc:
        if remote is not None:  # before the writers' close could complete an upload
            remote.abandon_streams()
        for writer in shards.values():
            try:
                writer.close()
            except Exception:  # the original error is the one to report
                pass
        temp_output.discard()
        if isinstance(exc, OSError) and not isinstance(exc, DatakilnError):
            raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc
        raise
    if remote is None:
        result.files = [str(target / p.relative_to(temp)) if as_directory else str(target)
                        for p in files]
        result.bytes = sum(os.path.getsize(f) for f in result.files)
    log.info("wrote %s rows to %s (%s, %d file(s), %s bytes)", f"{result.rows:,}", result.path, format,
             len(result.files), f"{result.bytes:,}")
    return result


def _refuse_directory(target: Path) -> None:
    if target.is_dir():
        raise OutputExistsError(f"the output {str(target)!r} is a directory; a report or model file "
                                f"is one file: name a file inside it, e.g. {str(target / 'report.json')!r}")


def write_file_atomic(path: str | os.PathLike[str], write: Callable[[Path], None], *,
                      is_own: Callable[[Path], bool], overwrite: bool = False,
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Write one file atomically: ``write(temporary_path)`` fills it, a rename puts it at ``path``.

    An existing file at ``path`` is replaced only if ``is_own(path)`` says datakiln wrote it,
    or with ``overwrite=True``; a directory there, or a ``path`` that is one of ``inputs``
    (or contains one), raises :class:`~datakiln.errors.OutputExistsError` before anything is
    written, whatever ``overwrite`` says. Returns the absolute path written.
    """
    target = _target(path)
    check_inputs(target, inputs)
    _refuse_directory(target)
    temp = _prepare(target, directory=False, overwrite=overwrite, inputs=inputs, is_own=is_own)
    try:
        write(temp.path)
        commit(temp, directory=False, overwrite=overwrite, is_own=is_own)
    except BaseException as exc:
        temp.discard()
        if isinstance(exc, OSError) and not isinstance(exc, DatakilnError):
            raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = False,
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Write a report ``text`` (UTF-8) to ``path`` atomically; returns ``path``.

    The text should carry datakiln's mark (a JSON object starting with
    :func:`report_marker`, or HTML with :func:`generator_meta`): an existing file is
    replaced only when it carries the mark or with ``overwrite=True``, never when it is one
    of ``inputs`` (see :func:`write_file_atomic`).
    """
    write_file_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"),
                      is_own=is_own_report, overwrite=overwrite, inputs=inputs)
    return Path(path)


class MultiWriter:
    """Route tables to several files ``directory/<name><ext>`` in one pass, as one output.

    The files (and any ``extra`` text files given to :meth:`commit`) are written into a
    temporary directory with the manifest ``_datakiln.json``; :meth:`commit` swaps it in
    place of ``directory`` atomically and :meth:`abort` removes it, so a failed pass leaves
    the previous output. ``directory`` follows :func:`write_tables`' rules for a directory.
    """

    def __init__(self, directory: str | os.PathLike[str], names: Sequence[str], schema: pa.Schema,
                 *, format: str = "parquet", compression: str = "zstd", overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
        if format not in WRITE_FORMATS:
            raise UnsupportedFormatError(f"cannot write format {format!r}; choose one of "
                                         f"{sorted(WRITE_FORMATS)}")
        self.format, self.overwrite, self.rows = format, overwrite, 0
        self._remote: RemoteOutput | None = None
        if is_remote(directory):  # objects named with the run's token, committed by the manifest
            _check_remote_inputs(directory, inputs)
            self._remote = RemoteOutput(os.fspath(directory), directory=True, overwrite=overwrite)
            self.directory: Any = self._remote.url
            self._temp: Any = self._remote
            # the URLs the objects will have (their names carry the run's token)
            self.targets: dict[str, Any] = {
                n: f"{self.directory}/{self._remote.key(f'{n}{WRITE_FORMATS[format]}')}" for n in names}
        else:
            self.directory = _target(directory)
            self._temp = _prepare(self.directory, directory=True, overwrite=overwrite, inputs=inputs)
            self.targets = {n: self.directory / f"{n}{WRITE_FORMATS[format]}" for n in names}
        opener = self._remote.open if self._remote is not None else None
        self._shards = {n: _Shards(self._temp.path, schema, format, compression, None,
                                   single=self._temp.path / f"{n}{WRITE_FORMATS[format]}", opener=opener)
                        for n in names}

    def write(self, name: str, table: pa.Table) -> None:
        """Append ``table`` to output ``name``."""
        if table.num_rows:
            self._shards[name].write(table)
            self.rows += table.num_rows

    def commit(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Close, add the ``extra`` text files ``{name: text}``, and swap the directory into
        place; returns ``{name: path}`` of the table files."""
        if self._remote is not None:
            return self._commit_remote(extra)
        try:
            for shard in self._shards.values():
                shard.close()
            files = [p for s in self._shards.values() for p in s.files]
            for name, text in (extra or {}).items():
                (self._temp.path / name).write_text(text, encoding="utf-8")
                files.append(self._temp.path / name)
            write_manifest(self._temp.path, files, format=self.format, rows=self.rows,
                           extra={"sidecars": sorted(extra)} if extra else None)  # readers skip them
            commit(self._temp, directory=True, overwrite=self.overwrite)
        except OSError as exc:
            if isinstance(exc, WriteError):
                raise
            raise WriteError(f"cannot write {str(self.directory)!r}: {exc}") from exc
        return {n: str(p) for n, p in self.targets.items()}

    def _commit_remote(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        assert self._remote is not None
        try:
            for shard in self._shards.values():
                shard.close()
            self._remote.commit(format=self.format, rows=self.rows, sidecars=dict(extra or {}))
        except BaseException:
            self.abort()
            raise
        return dict(self.targets)

    def abort(self) -> None:
        """Close and delete the temporary output."""
        if self._remote is not None:
            self._remote.abandon_streams()
        for shard in self._shards.values():
            try:
                shard.close()
            except Exception:  # cleaning up after the error that matters
                pass
        self._temp.discard()

"""Plain-text files as rows: one row per file, or one row per line.

Columns: ``text`` (string), ``label`` (the file's folder name, a dictionary column whose
codes follow the sorted folder names; absent with ``labels=None``), ``path`` (string) and,
in line mode, ``line`` (int64, 1-based). Files are read in groups of about ``block_bytes``
per task, so tasks run in parallel and memory is bounded by the group, not by the corpus.

Encodings (``encoding=None``): a byte-order mark decides first (UTF-8, UTF-16 LE/BE,
UTF-32 LE/BE); otherwise strict UTF-8; otherwise cp1252 (Windows Western, the usual
source of non-UTF-8 text); otherwise latin-1, which decodes any bytes. A file holding NUL
bytes without a UTF-16/32 mark is binary: skipped and counted in ``stats`` with a warning
(``on_binary="skip"``, the default) or refused (``"error"``). Line mode splits on ``\\n``,
``\\r\\n`` and ``\\r``.
"""

from __future__ import annotations

import codecs
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import PurePath

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import EncodingError, InvalidArgumentError, ParseError
from datakiln.io._files import FileSet, read_failure
from datakiln.io.base import ReadTask, SizeEstimate, Source, apply_pushdown

log = logging.getLogger(__name__)

__all__ = ["TextSource", "decode_text"]

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


class BinaryFileError(ParseError):
    """Internal marker: a file that holds binary data, not text."""


def decode_text(data: bytes, path: str, encoding: str | None = None) -> tuple[str, str]:
    """``(text, encoding used)`` of a file's bytes (see the module docstring for the order)."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"{path!r}: bytes {data[exc.start:exc.start + 8]!r} at offset {exc.start} are "
                f"not valid {encoding}; pass the file's encoding, or encoding=None to "
                "detect it") from exc
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as exc:
                raise EncodingError(f"{path!r} starts with a {name} byte-order mark but is not "
                                    f"valid {name} ({exc.reason} at offset {exc.start})") from exc
    if b"\x00" in data:
        raise BinaryFileError(f"{path!r} holds NUL bytes without a UTF-16/32 byte-order mark: "
                              "it is binary, not text")
    for name in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


class TextSource(Source):
    """Text files as rows of ``text``, ``label``, ``path`` (and ``line`` in line mode).

    Parameters
    ----------
    files : FileSet
        The files, from :func:`datakiln.io._files.resolve_files`.
    labels : {"folder", None}
        ``"folder"`` (default): ``label`` is the name of the folder holding each file;
        ``None``: no label column.
    mode : {"file", "line"}
        One row per file (default) or one row per line (empty lines are kept).
    encoding : str, optional
        The files' encoding; ``None`` (default) detects it per file.
    on_binary : {"skip", "error"}
        What to do with a binary file (NUL bytes): skip it and count it in ``stats`` with a
        warning (default), or raise :class:`~datakiln.errors.ParseError` naming it.
    block_bytes : int
        Bytes of files per read task (default 16 MB); one larger file is one task.
    """

    def __init__(self, files: FileSet, *, labels: str | None = "folder", mode: str = "file",
                 encoding: str | None = None, on_binary: str = "skip",
                 block_bytes: int = 16 * 1024 * 1024) -> None:
        super().__init__()
        if labels not in ("folder", None):
            raise InvalidArgumentError(f"labels must be 'folder' or None, got {labels!r}")
        if mode not in ("file", "line"):
            raise InvalidArgumentError(f"mode must be 'file' or 'line', got {mode!r}")
        if on_binary not in ("skip", "error"):
            raise InvalidArgumentError(f"on_binary must be 'skip' or 'error', got {on_binary!r}")
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError as exc:
                raise InvalidArgumentError(f"unknown encoding {encoding!r}") from exc
        self.files = files
        self.name = files.paths[0] if len(files.paths) == 1 else f"{len(files.paths)} text files"
        self.labels, self.mode, self.encoding = labels, mode, encoding
        self.on_binary, self.block_bytes = on_binary, int(block_bytes)
        self.classes = sorted({_folder(p) for p in files.paths}) if labels else []
        fields = [pa.field("text", pa.string())]
        if labels:
            fields.append(pa.field("label", pa.dictionary(pa.int32(), pa.string())))
        fields.append(pa.field("path", pa.string()))
        if mode == "line":
            fields.append(pa.field("line", pa.int64()))
        self._schema = pa.schema(fields)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def fingerprint(self) -> str:
        return (f"text:{self.files.fingerprint()}:{self.labels}:{self.mode}:{self.encoding}:"
                f"{self.on_binary}")

    def estimate_size(self) -> SizeEstimate:
        rows = len(self.files.paths) if self.mode == "file" else None
        return SizeEstimate(rows, self.files.total_bytes, exact=False)

    def task_bytes(self) -> int:
        """A group's bytes, about four times over (bytes, str, Arrow copy)."""
        largest = max(self.files.sizes, default=0)
        return max(4 * max(min(largest, self.block_bytes), largest), 64 * 1024)

    def _groups(self) -> Iterator[list[str]]:
        group: list[str] = []
        held = 0
        for path, size in zip(self.files.paths, self.files.sizes):
            if group and held + size > self.block_bytes:
                yield group
                group, held = [], 0
            group.append(path)
            held += size
        if group:
            yield group

    def _read(self, path: str) -> str | None:
        try:
            with self.files.filesystem.open_input_file(path) as handle:
                data = handle.read()
        except OSError as exc:
            raise read_failure(path, exc) from exc
        try:
            return decode_text(bytes(data), path, self.encoding)[0]
        except BinaryFileError as exc:
            if self.on_binary == "error":
                raise ParseError(f"{exc}; remove it from the input, or pass "
                                 "on_binary='skip' to skip binary files") from None
            log.warning("%s; skipped", exc)
            self.stats.record(path, None, "binary file skipped")
            return None

    def _table(self, paths: list[str]) -> pa.Table:
        texts: list[str] = []
        owners: list[str] = []
        lines: list[int] = []
        for path in paths:
            text = self._read(path)
            if text is None:
                continue
            if self.mode == "file":
                texts.append(text)
                owners.append(path)
                continue
            parts = text.splitlines() if text else []
            texts.extend(parts)
            owners.extend([path] * len(parts))
            lines.extend(range(1, len(parts) + 1))
        columns: list[pa.Array] = [pa.array(texts, pa.string())]
        path_array = pa.array(owners, pa.string())
        if self.labels:
            folders = pa.array([_folder(p) for p in owners], pa.string())
            codes = pc.index_in(folders, value_set=pa.array(self.classes, pa.string()))
            columns.append(pa.DictionaryArray.from_arrays(
                codes.cast(pa.int32()), pa.array(self.classes, pa.string())))
        columns.append(path_array)
        if self.mode == "line":
            columns.append(pa.array(lines, pa.int64()))
        return pa.Table.from_arrays(columns, schema=self._schema)

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        self.stats.reset()
        for group in self._groups():
            yield lambda g=group: apply_pushdown(self._table(g), columns, filter)


def _folder(path: str) -> str:
    """The name of the folder holding ``path`` (``""`` for a file at the top)."""
    return PurePath(path.replace(os.sep, "/")).parent.name

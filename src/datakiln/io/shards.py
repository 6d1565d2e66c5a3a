"""Tar shards in the WebDataset layout: read them as a Dataset, write a Dataset into them.

A shard ``shard-000000.tar`` holds samples as consecutive members sharing a *key* (the
member's path up to the first dot of its file name): ``000017.jpg`` (the encoded image),
``000017.cls`` (the class code as decimal text) and, written by datakiln,
``000017.path.txt`` (the image's original path). Reading is one task per shard, which
streams through the file once (sequential reads, the reason to pack small files into
shards); images stay encoded and are validated like files in a folder
(:func:`datakiln.io.images.validated_rows`).

Class names: a shard directory written by datakiln records them in its manifest
(``_datakiln.json``, key ``classes``), and ``label`` is read back as the same dictionary
column :func:`datakiln.read_images` gives; other shards give ``label`` as int64 codes.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import (
    ImageDecodeError,
    InvalidArgumentError,
    ParseError,
    SchemaError,
    WriteError,
)
from datakiln.io._files import FileSet
from datakiln.io._image_probe import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, sniff_format
from datakiln.io._output import MANIFEST, commit, write_manifest
from datakiln.io.base import ReadStats, ReadTask, SizeEstimate, Source, apply_pushdown
from datakiln.io.images import KEEP_SKIPPED, check_on_error, image_field, validated_rows

__all__ = ["SHARD_ENDINGS", "ShardSource", "write_tar_shards"]

log = logging.getLogger(__name__)

SHARD_ENDINGS = (".tar", ".tar.gz", ".tgz")
_IMAGE_KEYS = tuple(e.lstrip(".") for e in IMAGE_EXTENSIONS)
_WRITE_ENDING = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp",
                 "TIFF": "tif"}


def _split_member(name: str) -> tuple[str, str]:
    """``("dir/000017", "path.txt")`` for ``"dir/000017.path.txt"`` (WebDataset keys)."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower() if dot else ""


def _manifest_classes(files: FileSet) -> list[str] | None:
    folder = files.base or os.path.dirname(files.paths[0])
    try:
        with files.filesystem.open_input_stream(f"{folder.rstrip('/')}/{MANIFEST}") as stream:
            classes = json.loads(stream.read().decode("utf-8")).get("classes")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) else None


class ShardSource(Source):
    """WebDataset-style tar shards as rows ``image``, ``label`` (when present), ``path``.

    Parameters
    ----------
    files : FileSet
        The shard files (``.tar``, or gzip-compressed ``.tar.gz`` / ``.tgz``).
    on_error : {"raise", "skip"}
        What a bad image, or a sample without one, does (default "raise"). A shard that
        cannot be read to its end keeps the samples before the damage under "skip".
    max_pixels : int or None
        Pixel limit per image (default 89,478,485).
    """

    def __init__(self, files: FileSet, *, on_error: str = "raise",
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        super().__init__()
        self.stats = ReadStats(keep=KEEP_SKIPPED)
        self.files = files
        self.on_error = check_on_error(on_error)
        self.max_pixels = max_pixels
        self.name = files.base or (files.paths[0] if len(files.paths) == 1
                                   else f"{len(files.paths)} tar shards")
        self.classes = _manifest_classes(files)
        self._has_labels = self.classes is not None or self._first_sample_has_label()

    def _first_sample_has_label(self) -> bool:
        path = self.files.paths[0]
        if not path.lower().endswith((".gz", ".tgz")):  # the first MiB tells, mostly
            with self.files.filesystem.open_input_file(path) as handle:
                head = handle.read(1 << 20)
            exts, first = set(), None
            try:
                for name, _data in _tar_members(head):
                    key, ext = _split_member(name)
                    if first is not None and key != first:
                        return "cls" in exts
                    first = key
                    exts.add(ext)
            except tarfile.ReadError:
                pass
            if len(head) < 1 << 20:
                return "cls" in exts
        sample = next(iter(self._samples(path)), None)
        return sample is not None and "cls" in sample[1]

    @property
    def schema(self) -> pa.Schema:
        fields = [image_field()]
        if self._has_labels:
            fields.append(pa.field("label", pa.int64() if self.classes is None
                                   else pa.dictionary(pa.int32(), pa.string())))
        fields.append(pa.field("path", pa.string()))
        return pa.schema(fields)

    def fingerprint(self) -> str:
        return f"shards:{self.max_pixels}:{self.files.fingerprint()}"  # on_error: see images.py

    def with_on_error(self, on_error: str) -> ShardSource:
        """A copy that raises on, or skips and counts, each bad sample (own ``stats``)."""
        other = copy.copy(self)
        other.on_error = check_on_error(on_error)
        other.stats = ReadStats(keep=KEEP_SKIPPED)
        return other

    def estimate_size(self) -> SizeEstimate:
        return SizeEstimate(None, self.files.total_bytes)

    def task_bytes(self) -> int:
        return max(1024, max(self.files.sizes))

    def read_tasks(self, columns: Sequence[str] | None = None,
                   filter: pc.Expression | None = None) -> Iterator[ReadTask]:
        self.stats.reset()
        for path in self.files.paths:
            yield lambda p=path: apply_pushdown(self._read_shard(p), columns, filter)

    def _samples(self, path: str) -> Iterator[tuple[str, dict[str, bytes], Exception | None]]:
        """``(key, {extension: bytes}, None)`` per sample; a damaged shard ends with
        ``("", {}, error)``."""
        key, members = None, {}
        try:
            for name, data in self._members(path):
                this, ext = _split_member(name)
                if this != key and key is not None:
                    yield key, members, None
                    members = {}
                key = this
                members[ext] = data
        except (tarfile.TarError, OSError, EOFError) as exc:
            if key is not None and members:
                yield key, members, None
            yield "", {}, exc
            return
        if key is not None:
            yield key, members, None

    def _members(self, path: str) -> Iterator[tuple[str, bytes]]:
        """Regular files of a shard as ``(name, bytes)``: an uncompressed shard is read whole
        and its headers parsed here (several times faster than :mod:`tarfile` per member);
        a gzip-compressed one streams through :mod:`tarfile`."""
        if path.lower().endswith((".gz", ".tgz")):
            with self.files.filesystem.open_input_stream(path, compression=None) as stream:
                with tarfile.open(fileobj=stream, mode="r|gz") as tar:
                    for info in tar:
                        if info.isfile():
                            handle = tar.extractfile(info)
                            yield info.name, handle.read() if handle is not None else b""
            return
        with self.files.filesystem.open_input_file(path) as handle:
            data = handle.read()
        yield from _tar_members(data)


    def _read_shard(self, path: str) -> pa.Table:
        items: list[tuple[str, bytes]] = []
        labels: list[int | None] = []
        names: list[str] = []
        for key, members, error in self._samples(path):
            if error is not None:
                failure = ParseError(f"the tar shard {path!r} is truncated or corrupt "
                                     f"({error}); write it again (kiln convert)")
                if self.on_error == "raise":
                    raise failure from error
                self.stats.record(path, None, str(failure))
                break
            where = f"{path}:{key}"
            image = next((members[e] for e in _IMAGE_KEYS if e in members), None)
            if image is None:
                problem = ImageDecodeError(
                    f"{where}: the sample has no image member (found {sorted(members)}); "
                    f"image members end in {', '.join(_IMAGE_KEYS)}")
                if self.on_error == "raise":
                    raise problem
                self.stats.record(where, None, str(problem))
                continue
            items.append((where, image))
            labels.append(self._label(members.get("cls"), where))
            names.append(members["path.txt"].decode("utf-8", "replace")
                         if "path.txt" in members else where)
        good = validated_rows(items, on_error=self.on_error, stats=self.stats,
                              max_pixels=self.max_pixels)
        arrays: list[pa.Array] = [pa.array([items[g][1] for g in good], pa.binary())]
        if self._has_labels:
            codes = [labels[g] for g in good]
            if self.classes is None:
                arrays.append(pa.array(codes, pa.int64()))
            else:
                arrays.append(pa.DictionaryArray.from_arrays(
                    pa.array(codes, pa.int32()), pa.array(self.classes, pa.string())))
        arrays.append(pa.array([names[g] for g in good], pa.string()))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _label(self, raw: bytes | None, where: str) -> int | None:
        if raw is None:
            return None
        try:
            code = int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise ParseError(f"{where}.cls holds {raw[:40]!r}, not a class number") from None
        if self.classes is not None and not 0 <= code < len(self.classes):
            raise ParseError(f"{where}.cls holds class {code}, but the manifest names "
                             f"{len(self.classes)} classes")
        return code


def _octal(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_path(body: bytes) -> str | None:
    for record in body.split(b"\n"):
        _, _, entry = record.partition(b" ")
        if entry.startswith(b"path="):
            return entry[5:].decode("utf-8", "replace")
    return None


def _tar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Regular files of an uncompressed tar (ustar, pax or GNU long names), header
    checksums verified; raises :class:`tarfile.ReadError` at damage or a cut."""
    view, pos, n = memoryview(data), 0, len(data)
    long_name = None
    while pos + 512 <= n:
        header = data[pos:pos + 512]
        if header.count(0) == 512:
            return  # end-of-archive blocks
        stored = _octal(header[148:156])
        if stored != sum(header[:148]) + 256 + sum(header[156:]):
            raise tarfile.ReadError(f"bad header checksum at byte {pos}")
        size = _octal(header[124:136])
        kind = header[156:157]
        start, pos = pos + 512, pos + 512 + (size + 511) // 512 * 512
        if start + size > n:
            raise tarfile.ReadError(f"member at byte {start - 512} runs past the end "
                                    f"({n:,} bytes)")
        if kind in (b"x", b"L"):
            body = bytes(view[start:start + size])
            long_name = (_pax_path(body) if kind == b"x"
                         else body.rstrip(b"\0").decode("utf-8", "replace"))
            continue
        if kind in (b"0", b"\0", b"7"):
            name = long_name
            if name is None:
                name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
                prefix = header[345:500].split(b"\0", 1)[0]
                if header[257:262] == b"ustar" and prefix:
                    name = prefix.decode("utf-8", "replace") + "/" + name
            yield name, bytes(view[start:start + size])
        long_name = None
    if pos != n:
        raise tarfile.ReadError(f"the archive ends inside a header ({n:,} bytes)")
    raise tarfile.ReadError("no end-of-archive marker")


# -- writing ------------------------------------------------------------------------------

def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info, io.BytesIO(data)


def _label_codes(table: pa.Table, label: str | None,
                 classes: list[str] | None) -> tuple[list[int | None], list[str] | None]:
    """Class codes of ``table``'s rows; dictionary labels are coded by name against
    ``classes`` (the names met so far, extended in place), so every shard agrees."""
    if label is None or label not in table.column_names:
        return [None] * table.num_rows, classes
    column = table.column(label)
    if pa.types.is_dictionary(column.type):
        classes = [] if classes is None else classes
        index = {name: code for code, name in enumerate(classes)}
        for name in pc.unique(column.cast(column.type.value_type)).to_pylist():
            if name is not None and str(name) not in index:
                index[str(name)] = len(classes)
                classes.append(str(name))
        names = column.cast(column.type.value_type).to_pylist()
        return [None if n is None else index[str(n)] for n in names], classes
    if pa.types.is_integer(column.type):
        return column.to_pylist(), classes
    raise SchemaError(f"the label column {label!r} is {column.type}; tar shards store class "
                      "codes: use a dictionary (categorical) or integer label")


def write_tar_shards(tables: Iterable[pa.Table], path: str | os.PathLike[str], *,
                     rows_per_file: int = 10_000, image: str = "image",
                     label: str | None = "label", source_path: str | None = "path",
                     overwrite: bool = False, inputs: Iterable[str | os.PathLike[str]] = (),
                     on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write encoded images into WebDataset tar shards ``shard-NNNNNN.tar`` under ``path``.

    Parameters
    ----------
    tables : iterable of pyarrow.Table
        Rows with the encoded ``image`` bytes, optionally a ``label`` (dictionary or
        integer) and the original ``source_path``.
    path : path
        The output directory; written atomically with its manifest (``classes`` in it when
        the labels have names). The output rules of :mod:`datakiln.io._output` apply.
    rows_per_file : int
        Samples per shard (default 10,000).
    overwrite : bool
        Replace a foreign file at ``path`` (never a foreign directory).
    inputs : paths
        What is being read (the output may not be or contain one).
    on_progress : callable, optional
        Called with the number of rows after each table.

    Returns
    -------
    dict
        ``{"path", "rows", "files", "bytes"}``.
    """
    from datakiln.io.objectstore import RemoteOutput, is_remote
    from datakiln.io.write import _check_remote_inputs, _prepare, _target

    if not 0 < rows_per_file < 2**62:
        raise InvalidArgumentError(f"rows_per_file must be positive, got {rows_per_file}")
    remote: RemoteOutput | None = None
    if is_remote(path):  # shards named with the run's token, committed by the manifest
        _check_remote_inputs(path, inputs)
        remote = RemoteOutput(os.fspath(path), directory=True, overwrite=overwrite)
        target: Any = remote.url
        temp: Any = remote
    else:
        target = _target(path)
        temp = _prepare(target, directory=True, overwrite=overwrite, inputs=inputs)
    files: list[Any] = []
    rows, classes, tar, stream = 0, None, None, None
    try:
        for table in tables:
            if isinstance(table, pa.RecordBatch):
                table = pa.Table.from_batches([table])
            if image not in table.column_names:
                raise SchemaError(f"tar shards need the encoded image column {image!r}; the "
                                  f"columns are {table.column_names}")
            codes, classes = _label_codes(table, label, classes)
            images = table.column(image).to_pylist()
            paths = (table.column(source_path).to_pylist()
                     if source_path and source_path in table.column_names else None)
            for i, data in enumerate(images):
                if rows % rows_per_file == 0:
                    if tar is not None:
                        tar.close()
                    if stream is not None:
                        stream.close()  # completes the shard's upload
                    files.append(temp.path / f"shard-{len(files):06d}.tar")
                    if remote is not None:
                        stream = remote.open(files[-1])
                        tar = tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT)
                    else:
                        tar = tarfile.open(files[-1], "w", format=tarfile.PAX_FORMAT)
                key = f"{rows:09d}"
                fmt = sniff_format(data or b"")
                if fmt is None:
                    raise SchemaError(f"row {rows} of column {image!r} is not an encoded image; "
                                      "tar shards hold encoded files (JPEG, PNG, ...)")
                assert tar is not None
                tar.addfile(*_member(f"{key}.{_WRITE_ENDING[fmt]}", data))
                if codes[i] is not None:
                    tar.addfile(*_member(f"{key}.cls", str(codes[i]).encode()))
                if paths is not None and paths[i] is not None:
                    tar.addfile(*_member(f"{key}.path.txt", paths[i].encode("utf-8")))
                rows += 1
            if on_progress is not None:
                on_progress(table.num_rows)
        if tar is not None:
            tar.close()
        extra = {"classes": classes} if classes is not None else {}
        if remote is not None:
            written = remote.commit(format="tar", rows=rows, extra=extra)
            return {"path": remote.url, "rows": rows, "files": written, "bytes": remote.bytes}
        write_manifest(temp.path, files, format="tar", rows=rows, extra=extra)
        commit(temp, directory=True, overwrite=overwrite)
    except BaseException as exc:
        if remote is not None:
            remote.abandon_streams()
        if tar is not None:
            try:
                tar.close()
            except Exception:  # cleaning up after the error that matters
                if remote is None:
                    raise
        temp.discard()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {str(target)!r}: {exc}") from exc
        raise
    written = [str(target / f.name) for f in files]
    return {"path": str(target), "rows": rows, "files": written,
            "bytes": sum(os.path.getsize(f) for f in written)}

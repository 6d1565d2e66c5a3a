"""Resolve paths, globs, directories and fsspec URLs to files, and detect their format."""

from __future__ import annotations

import glob as globlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from datakiln._optional import import_optional
from datakiln.errors import (
    DatakilnError,
    MissingDependencyError,
    ParseError,
    SchemaError,
    SourceError,
    SourceNotFoundError,
    UnsupportedFormatError,
)

__all__ = ["FORMATS", "FileSet", "column_type", "detect_format", "newline_blocks", "newline_ranges",
           "read_failure", "resolve_files", "uncompressed_size"]

#: format name -> file endings it is recognised by (compression endings are stripped first)
FORMATS = {
    "csv": (".csv", ".tsv", ".tab", ".txt", ".data", ".test"),
    "parquet": (".parquet", ".pq", ".parq"),
    "json": (".jsonl", ".ndjson", ".json"),
    "arrow": (".arrow", ".feather", ".ipc"),
    "xml": (".xml",),
}
COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
_HIDDEN = ("_", ".")
#: assumed inflation of compressed text when the file does not record its own size
_COMPRESSION_RATIO = 8
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


@dataclass(frozen=True)
class FileSet:
    """Files of one dataset on one filesystem; ``base`` is the directory given, if any."""

    filesystem: pafs.FileSystem
    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    mtimes: tuple[float, ...]
    base: str | None = None

    @property
    def total_bytes(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(self.sizes)

    def fingerprint(self) -> str:
        """Paths, sizes and modification times joined: changes when any file changes."""
        return "|".join(f"{p}:{s}:{m}" for p, s, m in zip(self.paths, self.sizes, self.mtimes))


def _filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """Split ``url`` into a pyarrow filesystem and a path on it."""
    if "://" not in url or url.startswith("file://"):
        local = url[len("file://"):] if url.startswith("file://") else url
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(local))
    protocol = url.split("://", 1)[0]
    fsspec = import_optional("fsspec", extra="all", purpose=f"{protocol}:// URLs")
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading {url!r} needs the fsspec backend for {protocol}://: {exc}"
        ) from exc
    except ValueError as exc:
        raise UnsupportedFormatError(f"unknown URL protocol {protocol!r} in {url!r}: {exc}") from exc
    return pafs.PyFileSystem(_StoreHandler(fs)), path


def _vanished(fs: Any, path: str) -> FileNotFoundError:
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return FileNotFoundError(
        f"{protocol}://{path} no longer exists: it was listed (or named by its output's manifest) "
        "a moment ago, so another write replaced or deleted it while it was being read; read "
        "the data again")


class _Guarded:
    """An fsspec file whose reads turn 'no such key' into :func:`_vanished`'s message."""

    def __init__(self, handle: Any, fs: Any, path: str) -> None:
        self._handle, self._fs, self._path = handle, fs, path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def read(self, *args: Any) -> Any:
        try:
            return self._handle.read(*args)
        except FileNotFoundError as exc:
            raise _vanished(self._fs, self._path) from exc


class _StoreHandler(pafs.FSSpecHandler):
    """pyarrow's bridge to an fsspec store, saying plainly when an object vanished between
    the listing (or the manifest) and the read: a concurrent write replaced it."""

    def open_input_file(self, path: str) -> Any:
        if not self.fs.isfile(path):
            raise _vanished(self.fs, path)
        return pa.PythonFile(_Guarded(self.fs.open(path, mode="rb"), self.fs, path), mode="r")

    def open_input_stream(self, path: str) -> Any:
        return self.open_input_file(path)


def _expand(fs: pafs.FileSystem, path: str, original: str) -> tuple[list[pafs.FileInfo], str | None]:
    if not isinstance(fs, pafs.LocalFileSystem):
        fs.handler.fs.invalidate_cache()  # type: ignore[attr-defined]  # another process may have written
    # a file or directory whose name holds ``*?[`` is itself, not a pattern
    if any(ch in path for ch in "*?[") and fs.get_file_info(path).type == pafs.FileType.NotFound:
        if isinstance(fs, pafs.LocalFileSystem):
            matches = sorted(globlib.glob(path, recursive=True))
        else:  # inside a datakiln output, only what its manifest lists (objectstore.py)
            from datakiln.io.objectstore import committed_matches

            store = fs.handler.fs  # type: ignore[attr-defined]
            matches = committed_matches(store, sorted(store.glob(path)))
        infos = [i for i in fs.get_file_info(matches) if i.type == pafs.FileType.File]
        if not infos:
            raise SourceNotFoundError(f"the pattern {original!r} matched no files")
        return infos, None
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound and not isinstance(fs, pafs.LocalFileSystem):
        from datakiln.io.objectstore import listed_as  # out/train.parquet of a split on a store

        named = listed_as(fs.handler.fs, path.rstrip("/"))  # type: ignore[attr-defined]
        if named is not None:
            info = fs.get_file_info(named)
    if info.type == pafs.FileType.NotFound:
        if not isinstance(fs, pafs.LocalFileSystem):
            raise SourceNotFoundError(f"no such object, prefix or bucket: {original!r}; check the URL "
                                      "(and AWS_ENDPOINT_URL / AWS_PROFILE for an S3 API server)")
        raise SourceNotFoundError(
            f"no such file or directory: {original!r}; check the path (relative paths start "
            f"at {os.getcwd()!r})"
        )
    if info.type == pafs.FileType.Directory:
        if isinstance(fs, pafs.LocalFileSystem):
            found = fs.get_file_info(_local_walk(path))
        else:
            found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        infos = [
            i for i in found
            if i.type == pafs.FileType.File
            and not any(part.startswith(_HIDDEN) for part in Path(i.path[len(path):]).parts)
        ]
        if isinstance(fs, pafs.LocalFileSystem):
            infos = _without_sidecars(infos, path)
        else:  # an object-store prefix: only what its manifest lists (objectstore.py)
            from datakiln.io.objectstore import committed_infos

            infos = committed_infos(fs.handler.fs, path.rstrip("/"), infos, FORMATS,  # type: ignore[attr-defined]
                                    original)
        if not infos:
            raise SourceNotFoundError(f"the directory {original!r} holds no data files")
        return sorted(infos, key=lambda i: i.path), path
    if info.type != pafs.FileType.File:
        _refuse_special(path, original)
    return [info], None


def _local_walk(root: str) -> list[str]:
    """Every path under the local directory ``root``, following symlinks but never a loop.

    A linked directory is entered only if its real path is not already among the real paths
    of the directories above it, so ``link -> ..`` is listed once instead of forty levels
    deep (or, with two such links, exponentially often).
    """
    paths: list[str] = []

    def walk(directory: str, above: frozenset[str]) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if not is_dir:
                paths.append(entry.path)
                continue
            real = os.path.realpath(entry.path)
            if real not in above:
                walk(entry.path, above | {real})

    walk(root, frozenset({os.path.realpath(root)}))
    return paths


def _without_sidecars(infos: list[pafs.FileInfo], path: str) -> list[pafs.FileInfo]:
    """A directory datakiln wrote (it holds the manifest) is read as its data files: the
    ``sidecars`` its manifest lists (``split.json`` of ``kiln split``) are left out, and so is
    any listed file of another format than the manifest's (manifests written before
    ``sidecars`` existed)."""
    from datakiln.io._output import read_manifest

    manifest = read_manifest(Path(path))
    if manifest is None:
        return infos
    root = Path(path)
    sidecars = {os.path.normpath(name) for name in manifest.get("sidecars") or [] if isinstance(name, str)}
    listed = {os.path.normpath(f["path"]) for f in manifest["files"]}
    wanted = manifest.get("format")

    def data(info: pafs.FileInfo) -> bool:
        relative = os.path.normpath(os.path.relpath(info.path, root))
        if relative in sidecars:
            return False
        if relative in listed and wanted in FORMATS:
            stem, _ = split_compression(info.path)
            return stem.lower().endswith(FORMATS[wanted])
        return True

    return [info for info in infos if data(info)]


def _refuse_special(path: str, original: str) -> None:
    """Refuse a path that is not a regular file, before anything opens it.

    A FIFO with no writer would block ``open`` forever, and pipes, sockets and devices
    cannot seek, which byte-range reading needs.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SourceError(f"cannot read {original!r}: {exc}") from exc
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise UnsupportedFormatError(
        f"{original!r} is {kind}, not a regular file; datakiln reads files by seeking in "
        "them, which pipes, sockets and devices cannot do. Write the data to a file first "
        "(e.g. `cat ... > data.csv`); reading standard input and streams is planned as "
        "separate stream sources")


def read_failure(path: str, exc: BaseException) -> SourceError:
    """A datakiln error for an ``OSError`` (or Arrow I/O error) met while reading ``path``.

    Broken compressed data (a truncated download, or a file whose ending promises a
    compression it does not have) is the usual cause; the message says which fix applies.
    """
    codec = split_compression(path)[1]
    if codec is not None:
        ending = next(e for e, c in COMPRESSION.items() if c == codec)
        return ParseError(
            f"{path!r} cannot be decompressed as {codec} ({exc}): it is truncated or corrupt "
            f"(download or compress it again), or it is not {codec} data (if it is plain "
            f"text, rename it without the {ending!r} ending)")
    if isinstance(exc, FileNotFoundError):
        return SourceNotFoundError(f"{path!r} disappeared while it was being read: {exc}")
    return SourceError(f"cannot read {path!r}: {exc}")


def uncompressed_size(filesystem: pafs.FileSystem, path: str, size: int) -> int:
    """Bytes of ``path`` once decompressed: gzip records it (modulo 4 GiB) in its last four
    bytes; other codecs are estimated at eight times their stored size."""
    codec = split_compression(path)[1]
    if codec is None:
        return size
    estimate = size * _COMPRESSION_RATIO
    if codec == "gzip" and size >= 18:
        try:
            with filesystem.open_input_file(path) as handle:
                recorded = int.from_bytes(handle.read_at(4, size - 4), "little")
        except OSError:
            return estimate
        # ISIZE wraps at 4 GiB: trust it only where it cannot have wrapped
        if estimate < 1 << 32 and recorded >= size // 2:
            return recorded
        return max(recorded, estimate)
    return estimate


def resolve_files(path_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> FileSet:
    """Turn a path, glob, directory, URL or list of them into a :class:`FileSet`."""
    items = ([path_or_paths] if isinstance(path_or_paths, (str, os.PathLike))
             else list(path_or_paths))
    if not items:
        raise SourceNotFoundError("an empty list of paths was given; pass at least one file")
    filesystem, infos, base = None, [], None
    for item in items:
        fs, path = _filesystem(os.fspath(item))
        if filesystem is not None and type(fs) is not type(filesystem):
            raise UnsupportedFormatError("all paths of one dataset must be on the same filesystem")
        filesystem = fs
        try:
            found, directory = _expand(fs, path, os.fspath(item))
        except (DatakilnError, KeyboardInterrupt):
            raise
        except Exception as exc:  # an object store's error: credentials, endpoint, bucket
            if isinstance(fs, pafs.LocalFileSystem):
                raise
            raise _remote_failure(os.fspath(item), exc) from exc
        infos.extend(found)
        base = directory if len(items) == 1 else None
    assert filesystem is not None
    return FileSet(
        filesystem,
        tuple(i.path for i in infos),
        tuple(int(i.size or 0) for i in infos),
        tuple(i.mtime.timestamp() if i.mtime else 0.0 for i in infos),
        base,
    )


def _remote_failure(url: str, exc: BaseException) -> SourceError:
    """A datakiln error for an object store's error while listing ``url``."""
    kind = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return SourceNotFoundError(f"no such object or bucket: {url!r} ({exc})")
    hint = " Check AWS_ENDPOINT_URL and that the server is reachable"
    if "Credential" in kind or "AccessDenied" in str(exc) or isinstance(exc, PermissionError):
        hint = (" Check the credentials in the environment (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy")
    return SourceError(f"cannot read {url!r}: {kind}: {exc}.{hint}")


def split_compression(path: str) -> tuple[str, str | None]:
    """``("data.csv", "gzip")`` for ``"data.csv.gz"``; no compression gives ``None``."""
    lower = path.lower()
    for ending, codec in COMPRESSION.items():
        if lower.endswith(ending):
            return path[: -len(ending)], codec
    return path, None


def detect_format(paths: Sequence[str], format: str | None = None) -> str:
    """The format named by ``format`` or shared by the files' endings."""
    if format is not None:
        name = {"tsv": "csv", "jsonl": "json", "ndjson": "json", "feather": "arrow",
                "ipc": "arrow"}.get(format.lower(), format.lower())
        if name not in FORMATS:
            raise UnsupportedFormatError(
                f"unknown format {format!r}; choose one of {sorted(FORMATS)}")
        return name
    found = set()
    for path in paths:
        stem = split_compression(path)[0].lower()
        matches = [name for name, endings in FORMATS.items() if stem.endswith(endings)]
        if not matches:
            raise UnsupportedFormatError(
                f"cannot tell the format of {path!r} from its extension; pass "
                f"format='csv'|'parquet'|'json'|'arrow'|'xml' (known endings: "
                f"{', '.join(e for ends in FORMATS.values() for e in ends)})"
            )
        found.add(matches[0])
    if len(found) > 1:
        raise UnsupportedFormatError(
            f"the files mix formats {sorted(found)}; read each format separately")
    return found.pop()


def newline_ranges(filesystem: pafs.FileSystem, path: str, size: int,
                   block_bytes: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of about ``block_bytes`` that each end just after a newline."""
    start = 0
    with filesystem.open_input_file(path) as handle:
        while start < size:
            end = min(start + block_bytes, size)
            while end < size:
                handle.seek(end)
                window = handle.read(65536)
                cut = window.find(b"\n")
                if cut >= 0:
                    end += cut + 1
                    break
                end += len(window)
            yield start, end
            start = end


def newline_blocks(opener: Callable[[str], Any], path: str,
                   block_bytes: int) -> Iterator[tuple[int, int, bytes]]:
    """``(byte offset, line number, text)`` of a stream (a compressed file, decompressed)
    in pieces of about ``block_bytes`` that each end just after a newline (the last one
    where the stream ends). The next piece is read on a thread while the caller works."""
    offset, line, rest = 0, 1, b""
    try:
        with opener(path) as stream, ThreadPoolExecutor(1) as ahead:
            pending = ahead.submit(stream.read, block_bytes)
            while True:
                block = pending.result()
                if block:
                    pending = ahead.submit(stream.read, block_bytes)
                data = rest + block
                if block and b"\n" in data:
                    cut = data.rindex(b"\n") + 1
                    data, rest = data[:cut], data[cut:]
                elif block:
                    rest = data  # one line longer than a block: read on
                    continue
                else:
                    rest = b""
                if data:
                    yield offset, line, data
                offset += len(data)
                line += data.count(b"\n")
                if not block:
                    return
    except (OSError, pa.ArrowException) as exc:
        raise read_failure(path, exc) from exc


def column_type(name: str, value: Any) -> pa.DataType:
    """The Arrow type a ``column_types={name: value}`` entry asks for (a type or its alias)."""
    if isinstance(value, pa.DataType):
        return value
    try:
        return pa.type_for_alias(str(value))
    except (ValueError, KeyError) as exc:
        raise SchemaError(f"column_types[{name!r}]: unknown Arrow type {value!r} (try 'int64', "
                          "'float64', 'string', 'bool', 'date32', 'timestamp[s]')") from exc

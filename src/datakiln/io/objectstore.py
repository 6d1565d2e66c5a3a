"""Outputs on object stores (``s3://``, ``gs://``, ``memory://`` ... through fsspec).

An object store has no rename and no directories, so the local commit of
:mod:`datakiln.io._output` (write beside, then swap) becomes a commit by manifest:

- a **one-file output** (``s3://bucket/out.parquet``) is streamed straight to its key: S3
  makes an object visible only when its upload completes (a single PUT, or the completion of
  a multipart upload), so readers see the old object or the new one. A failed write aborts
  the upload; a killed one leaves an incomplete multipart upload, which is invisible (a bucket
  lifecycle rule for incomplete uploads reclaims the bytes);
- a **multi-object output** (a prefix: parts, partitions, splits, tar shards) writes each object
  under a name that carries the run's token (``part-00000-dk0123456789ab.parquet``), then
  writes the manifest ``<prefix>/_datakiln.json`` **last**: that one PUT is the commit.
  datakiln's readers read only what the manifest lists, so a killed write is never read. Before
  its first object, a writer records its run under ``<prefix>/_datakiln.runs/<token>.json``
  (host, pid, heartbeat); the next write to the prefix (or :func:`recover_remote`) deletes the
  objects of runs whose writer is gone (on the same host: its process is dead or its pid
  names another process; from another host: no heartbeat for :data:`STALE_AFTER_S` seconds)
  and, after a commit, the objects of the output it replaced. A committed run's record stays,
  marked ``committed``, while its manifest is the current one: when two writers commit at once
  the last manifest wins, and the record is what lets the loser's unlisted objects be deleted
  (by the loser itself, or by the next write) instead of blocking the prefix as foreign ones.
  Only objects carrying a recorded run's token, and files the manifest listed, are ever
  deleted: anything else under the prefix makes the write refuse, as a local directory
  holding foreign files does.

Foreign readers (pyarrow.dataset, Spark) list the prefix and may read the parts of a killed
write until the next write tidies them; datakiln's readers never do.

Credentials come from the environment or a profile (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` for a non-AWS server), through
botocore's own resolution; datakiln never reads, stores or prints them, and error messages are
passed through :func:`datakiln._secrets.redact_text` like every other message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from datakiln._optional import import_optional
from datakiln.errors import (
    DatakilnError,
    InvalidArgumentError,
    MissingDependencyError,
    OutputExistsError,
    WriteError,
)

__all__ = ["RUNS", "STALE_AFTER_S", "RemoteOutput", "check_remote_output", "committed_infos",
           "committed_matches", "is_remote", "listed_as", "recover_remote", "remote_filesystem"]

log = logging.getLogger(__name__)

MANIFEST = "_datakiln.json"  # the same name as a local output's (datakiln.io._output.MANIFEST)
RUNS = "_datakiln.runs"
#: a writer on another host is taken for dead after this many seconds without a heartbeat
#: (it refreshes its record at least every 10 minutes, when it opens an object)
STALE_AFTER_S = 3600.0
_HEARTBEAT_S = 600.0
_TOKEN = re.compile(r"-(dk[0-9a-f]{12})(?=\.[^/]*$)")
_BLOCK_BYTES = 16 * 1024 * 1024  # multipart part size: memory per open object (S3 minimum: 5 MiB)


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL other than ``file://`` (an object store or other fsspec URL)."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
    return "://" in text and not text.startswith("file://")


def remote_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path on it (no trailing ``/``)."""
    protocol = url.split("://", 1)[0]
    fsspec = import_optional("fsspec", extra="s3", purpose=f"{protocol}:// URLs")
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{url!r} needs the fsspec backend for {protocol}:// ({exc}); for s3:// install "
            "datakiln[s3] (s3fs)") from exc
    except ValueError as exc:
        raise WriteError(f"cannot use {url!r}: {exc}") from exc
    return fs, path.rstrip("/")


def _failure(url: str, exc: BaseException) -> DatakilnError:
    """A datakiln error for a store error met on ``url`` (credentials are never quoted:
    botocore's messages name the key id at most, and messages are redacted anyway)."""
    kind = type(exc).__name__
    hint = ""
    if "Credential" in kind or "AccessDenied" in str(exc) or isinstance(exc, PermissionError):
        hint = (" Check the credentials in the environment (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy")
    elif "Endpoint" in kind or isinstance(exc, ConnectionError):
        hint = " Check AWS_ENDPOINT_URL and that the server is reachable"
    elif isinstance(exc, FileNotFoundError) or "NoSuchBucket" in str(exc):
        bucket = url.split("://", 1)[-1].split("/", 1)[0]
        hint = (f" datakiln creates no bucket: create {bucket!r} first (e.g. `aws s3 mb "
                f"s3://{bucket}`), or check the URL and AWS_ENDPOINT_URL")
    return WriteError(f"cannot write {url!r}: {kind}: {exc}.{hint}")


# -- what lies under a prefix ----------------------------------------------------------------

def _token(name: str) -> str | None:
    match = _TOKEN.search(name.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def _listing(fs: Any, root: str) -> dict[str, int]:
    """``{path relative to root: size}`` of every object under ``root/``."""
    fs.invalidate_cache()
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    prefix = root + "/"
    return {path[len(prefix):]: int(info.get("size") or 0) for path, info in found.items()
            if path.startswith(prefix) and info.get("type", "file") != "directory"}


def _read_json(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        data = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _manifest(fs: Any, root: str) -> dict[str, Any] | None:
    data = _read_json(fs, f"{root}/{MANIFEST}")
    if data is None or not isinstance(data.get("datakiln_output"), int):
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str)
                                              for f in files):
        return None
    return data


def _runs(fs: Any, root: str, objects: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The recorded runs ``{token: record}`` under ``root`` (from the listing ``objects``).

    A record deleted since the listing is left out (its run ended and tidied after itself);
    one that cannot be parsed counts as ``{}`` (a run that never started writing properly)."""
    runs: dict[str, dict[str, Any]] = {}
    for name in objects:
        if name.startswith(RUNS + "/") and name.endswith(".json"):
            token = name[len(RUNS) + 1:-len(".json")]
            try:
                record = json.loads(fs.cat_file(f"{root}/{name}"))
            except FileNotFoundError:
                continue
            except ValueError:
                record = None
            runs[token] = record if isinstance(record, dict) else {}
    return runs


def _process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _writer_gone(record: dict[str, Any]) -> bool:
    """Whether the writer of a run ``record`` is gone: on this host, its process is dead (or
    its pid now names another process); elsewhere, no heartbeat for :data:`STALE_AFTER_S`."""
    heartbeat = record.get("heartbeat")
    if not isinstance(heartbeat, (int, float)):
        return True  # an unreadable record: its run never started writing properly
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        pid = record["pid"]
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # another user's live process
        started = record.get("started")
        return isinstance(started, int) and _process_start(pid) not in (None, started)
    return time.time() - heartbeat > STALE_AFTER_S


def recover_remote(url: str) -> list[str]:
    """Delete what killed or superseded writers of the prefix ``url`` left; returns what was done.

    A run whose writer is gone loses its objects (those carrying its token), or, when its
    manifest was committed, the objects of the output it replaced. A committed run whose
    manifest was since replaced (two writers committing at once: the last one wins) loses the
    objects the manifest no longer lists. Live runs, the run the manifest names and objects of
    no recorded run are never touched.
    """
    fs, root = remote_filesystem(url)
    return _recover(fs, root)


def _recover(fs: Any, root: str) -> list[str]:
    # The order matters: the records first, then the manifest and the listing that decide what
    # goes, so that neither can be older than the verdict on a run (a run judged gone or
    # committed writes no more objects, and commits no other manifest).
    runs = _runs(fs, root, _listing(fs, root))
    verdicts = {token: ("committed" if record.get("committed") is True else "gone")
                for token, record in runs.items()
                if record.get("committed") is True or _writer_gone(record)}
    if not verdicts:
        return []
    manifest = _manifest(fs, root)
    listed = {f["path"] for f in manifest["files"]} if manifest else set()
    current = manifest.get("run") if manifest else None
    objects = _listing(fs, root)
    done: list[str] = []
    for token, verdict in verdicts.items():
        record = runs[token]
        if token == current:  # its commit stands: only the output it replaced may go
            doomed = [p for p in record.get("replacing") or [] if isinstance(p, str)
                      and p not in listed and p in objects]
            _remove(fs, [f"{root}/{p}" for p in doomed])
            if verdict == "gone":  # killed between its manifest and its record: say committed
                fs.pipe_file(f"{root}/{RUNS}/{token}.json",
                             json.dumps({**record, "committed": True, "replacing": []}).encode())
            if doomed:
                done.append(f"removed {len(doomed)} object(s) replaced by the write {token}")
            continue
        doomed = [p for p in objects if _token(p) == token and p not in listed]
        _remove(fs, [f"{root}/{p}" for p in doomed])
        _remove(fs, [f"{root}/{RUNS}/{token}.json"])
        what = "killed write" if verdict == "gone" else "write superseded by a later commit"
        done.append(f"removed {len(doomed)} object(s) of the {what} {token}")
        if doomed or verdict == "gone":
            log.warning("removed %d object(s) of the %s %s under %s", len(doomed), what, token, root)
    return done


def _remove(fs: Any, paths: Sequence[str]) -> None:
    if not paths:
        return
    try:
        fs.rm(list(paths))
    except FileNotFoundError:
        for path in paths:
            try:
                fs.rm_file(path)
            except FileNotFoundError:
                pass


def _refuse_foreign(url: str, fs: Any, root: str, objects: dict[str, int],
                    runs: dict[str, dict[str, Any]]) -> None:
    """Raise unless every object under the prefix is datakiln's (listed, or of a recorded run)."""
    manifest = _manifest(fs, root)
    sizes = {f["path"]: f.get("bytes") for f in manifest["files"]} if manifest else {}
    foreign = []
    for name, size in sorted(objects.items()):
        if name == MANIFEST or name.startswith(RUNS + "/") or _token(name) in runs:
            continue
        if name not in sizes:
            foreign.append(name)
        elif isinstance(sizes[name], int) and sizes[name] != size:
            foreign.append(f"{name} (changed since datakiln wrote it)")
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputExistsError(
            f"the output prefix {url!r} holds objects datakiln did not write ({shown}); datakiln "
            "never deletes or mixes with them, even with overwrite=True (--overwrite). Write to a "
            "new or empty prefix, or move those objects away")


def check_remote_output(url: str, *, directory: bool, overwrite: bool,
                        is_own: Callable[[Any, str], bool] | None = None) -> None:
    """Raise :class:`~datakiln.errors.OutputExistsError` now if writing ``url`` will be
    refused (the rules of :mod:`datakiln.io._output`, on a prefix or one object)."""
    fs, root = remote_filesystem(url)
    try:
        _check(url, fs, root, directory=directory, overwrite=overwrite, is_own=is_own)
    except DatakilnError:
        raise
    except Exception as exc:  # the store's own errors (botocore's are no OSError)
        raise _failure(url, exc) from exc


def _check(url: str, fs: Any, root: str, *, directory: bool, overwrite: bool,
           is_own: Callable[[Any, str], bool] | None) -> dict[str, int]:
    fs.invalidate_cache()
    if fs.isfile(root):
        if directory:
            raise OutputExistsError(
                f"{url!r} is an object; a multi-object output needs a prefix: name a new one, "
                f"e.g. {url.rstrip('/') + '_parts/'!r}")
        if not overwrite and not (is_own or _is_own_parquet)(fs, root):
            raise OutputExistsError(
                f"{url!r} already exists and datakiln did not write it (it replaces only its own "
                "output, recognised by a mark); pass overwrite=True (--overwrite) to replace it, "
                "or choose another key")
        return {}
    objects = _listing(fs, root)
    if objects and not directory:
        raise OutputExistsError(
            f"{url!r} is a prefix holding {len(objects)} object(s); a one-file output is one "
            f"object: name a key inside it, e.g. {url.rstrip('/') + '/out.parquet'!r}")
    if objects:
        _refuse_foreign(url, fs, root, objects, _runs(fs, root, objects))
    return objects


def _is_own_parquet(fs: Any, path: str) -> bool:
    from datakiln.io._output import PARQUET_MARK

    try:
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            metadata = pq.read_metadata(handle).metadata or {}
    except Exception:  # not Parquet, unreadable: not ours
        return False
    return PARQUET_MARK.encode() in metadata


# -- reading ---------------------------------------------------------------------------------

def committed_infos(fs: Any, root: str, infos: list[Any], formats: dict[str, tuple[str, ...]],
                    original: str) -> list[Any]:
    """The files of a prefix a reader may read: those its manifest lists (less sidecars and
    files of another format), or, without a manifest, all but the objects of recorded runs
    (a first write killed before its commit). ``infos`` are pyarrow ``FileInfo`` of the
    non-hidden objects; a listed object that is missing raises."""
    from datakiln.errors import SourceNotFoundError
    from datakiln.io._files import split_compression

    manifest = _manifest(fs, root)
    relative = {info.path[len(root) + 1:]: info for info in infos}
    if manifest is None:
        runs = _runs(fs, root, _listing(fs, root))
        return [info for name, info in relative.items() if _token(name) not in runs]
    sidecars = {n for n in manifest.get("sidecars") or [] if isinstance(n, str)}
    wanted = formats.get(manifest.get("format"))  # type: ignore[arg-type]
    chosen = []
    for entry in manifest["files"]:
        name = entry["path"]
        if name in sidecars:
            continue
        if wanted and not split_compression(name)[0].lower().endswith(wanted):
            continue
        if name not in relative:
            raise SourceNotFoundError(
                f"{original!r}: its manifest lists {name!r}, which is missing (the output was "
                "replaced while it was read, or objects were deleted by hand); read it again, or "
                "write the output again")
        chosen.append(relative[name])
    return sorted(chosen, key=lambda i: i.path)


def listed_as(fs: Any, path: str) -> str | None:
    """The object a datakiln output lists under the plain name ``path`` (``out/train.parquet``
    for ``out/train-dk0123456789ab.parquet``: objects carry their run's token), or None."""
    root, _, name = path.rpartition("/")
    manifest = _manifest(fs, root) if root else None
    if manifest is None or manifest.get("run") is None:
        return None
    token = manifest["run"]
    for entry in manifest["files"]:
        if entry["path"].replace(f"-{token}", "", 1) == name:
            return f"{root}/{entry['path']}"
    return None


def committed_matches(fs: Any, paths: Sequence[str]) -> list[str]:
    """The objects of a glob's ``paths`` a reader may read: an object inside a datakiln output
    (the nearest prefix above it holding a manifest) only if that manifest lists it, and,
    without a manifest, none of a recorded run (a killed write). Other objects pass."""
    manifests: dict[str, dict[str, Any] | None] = {}
    recorded: dict[tuple[str, str], bool] = {}

    def ancestors(path: str) -> Iterable[str]:
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            yield path

    def readable(path: str) -> bool:
        token = _token(path)
        for root in ancestors(path):
            if root not in manifests:
                manifests[root] = _manifest(fs, root)
            manifest = manifests[root]
            if manifest is not None:
                return path[len(root) + 1:] in {f["path"] for f in manifest["files"]}
            if token is not None:
                if (root, token) not in recorded:
                    recorded[root, token] = fs.exists(f"{root}/{RUNS}/{token}.json")
                if recorded[root, token]:
                    return False
        return True

    return [path for path in paths if readable(path)]


# -- writing ---------------------------------------------------------------------------------

class _Upload:
    """A binary stream to one object; ``close`` completes the upload (or, when ``deferred``,
    only ends the writing: :meth:`complete` then completes it), ``abandon`` aborts it."""

    def __init__(self, handle: Any, url: str, deferred: bool = False) -> None:
        self._handle, self._url, self._deferred = handle, url, deferred
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed or aborted upload")
        try:
            self._handle.write(data)
        except DatakilnError:
            raise
        except Exception as exc:  # an upload of a part failed
            raise _failure(self._url, exc) from exc
        self.size += len(memoryview(data))
        return len(memoryview(data))

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass  # the store buffers whole parts; a flush would upload a short part

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self._deferred:  # writing ended (writers may close twice); the commit completes it
            return
        if not self.closed:
            self.closed = True
            try:
                self._handle.close()
            except DatakilnError:
                raise
            except Exception as exc:  # the last part or the completion failed
                raise _failure(self._url, exc) from exc

    def complete(self) -> None:
        """Complete the upload (the commit of a one-object output)."""
        self._deferred = False
        self.close()

    def abandon(self) -> None:
        if not self.closed:
            self.closed = True
            discard = getattr(self._handle, "discard", None)
            if callable(discard):
                discard()  # s3fs: abort the multipart upload
                try:  # so that its finaliser does not try to upload what was discarded
                    self._handle.closed = True
                except AttributeError:
                    pass


class RemoteOutput:
    """One output at an object-store URL, written object by object and committed at the end.

    ``path`` is a relative stand-in for the output's root: the writers join names to it and
    hand the result to :meth:`open`, which returns a stream to the object (for a directory
    output, under a name carrying the run's token). :meth:`commit` makes the output visible,
    :meth:`discard` aborts it. Construction checks the target (see :func:`check_remote_output`),
    tidies after killed writers, and records the run.
    """

    def __init__(self, url: str, *, directory: bool, overwrite: bool = False,
                 is_own: Callable[[Any, str], bool] | None = None) -> None:
        if not directory and url.endswith("/"):
            raise InvalidArgumentError(
                f"{url!r} ends in '/', a prefix; a one-object output needs a key (e.g. "
                f"{url + 'part.parquet'!r}), or write several objects there (rows_per_file=, "
                "--rows-per-file)")
        self.url, self.directory, self.overwrite = url.rstrip("/") if directory else url, directory, overwrite
        self.fs, self.root = remote_filesystem(url)
        self.path = PurePosixPath(".")
        self.token = "dk" + uuid.uuid4().hex[:12]
        self.objects: dict[str, _Upload] = {}  # relative name -> stream
        self._heartbeat = 0.0
        self._committed = False
        try:
            objects = _check(url, self.fs, self.root, directory=directory, overwrite=overwrite,
                             is_own=is_own)
            if directory:
                if objects:
                    _recover(self.fs, self.root)
                self._record()
        except DatakilnError:
            raise
        except Exception as exc:  # the store's own errors (botocore's are no OSError)
            raise _failure(url, exc) from exc

    def _record(self, **extra: Any) -> None:
        self._heartbeat = time.time()
        record = {"run": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                  "started": _process_start(os.getpid()), "heartbeat": self._heartbeat, **extra}
        self.fs.pipe_file(f"{self.root}/{RUNS}/{self.token}.json", json.dumps(record).encode())

    def key(self, relative: str) -> str:
        """The object name of ``relative`` (the token inserted before the first ending)."""
        if not self.directory:
            return ""
        folder, _, name = relative.rpartition("/")
        stem, dot, endings = name.partition(".")
        named = f"{stem}-{self.token}{dot}{endings}"
        return f"{folder}/{named}" if folder else named

    def open(self, path: Any) -> _Upload:
        """A stream to the object for ``path`` (``self.path`` joined with names)."""
        relative = str(PurePosixPath(os.fspath(path)))
        if self.directory and time.time() - self._heartbeat > _HEARTBEAT_S:
            self._record()
        full = f"{self.root}/{self.key(relative)}" if self.directory else self.root
        try:
            handle = self.fs.open(full, "wb", block_size=_BLOCK_BYTES)
        except TypeError:  # a filesystem whose open() takes no block size
            handle = self.fs.open(full, "wb")
        except DatakilnError:
            raise
        except Exception as exc:  # the store's own errors (botocore's are no OSError)
            raise _failure(self.url, exc) from exc
        stream = _Upload(handle, self.url, deferred=not self.directory)
        self.objects[relative] = stream
        return stream

    def object_url(self, relative: str) -> str:
        """The URL of the object for ``relative``, for a writer in another process (a Ray
        task) to write with ``fsspec.open(url, "wb")``; :meth:`adopt` then lists it."""
        protocol = self.url.split("://", 1)[0]
        return f"{protocol}://{self.root}/{self.key(relative)}" if self.directory else self.url

    def adopt(self, relative: str, size: int) -> None:
        """Count the object for ``relative`` (``size`` bytes), written by another process at
        :meth:`object_url`, as part of this output: :meth:`commit` lists it, :meth:`discard`
        deletes it."""
        done = _Upload(None, self.url)
        done.size, done.closed = int(size), True
        self.objects[str(PurePosixPath(relative))] = done

    def abandon_streams(self) -> None:
        """Abort every upload still open (before writers' ``close`` could complete them)."""
        if self._committed:
            return
        for stream in self.objects.values():
            stream.abandon()

    def commit(self, *, format: str, rows: int | None, extra: dict[str, Any] | None = None,
               sidecars: dict[str, str] | None = None) -> list[str]:
        """Complete the output and return the URLs of its objects (the data files).

        A one-file output completes its upload. A directory output writes the ``sidecars``
        (``{name: text}``), then the manifest listing every object, which is the commit, then
        deletes the objects of the output it replaced and its run record.
        """
        from datakiln.io._output import MANIFEST_VERSION, test_pause

        protocol = self.url.split("://", 1)[0]
        try:
            if not self.directory:
                test_pause("commit")
                for stream in self.objects.values():
                    stream.complete()
                self._committed = True
                return [self.url]
            for stream in self.objects.values():
                stream.close()
            named_sidecars = {self.key(name): text.encode("utf-8") for name, text in (sidecars or {}).items()}
            for name, data in named_sidecars.items():
                self.fs.pipe_file(f"{self.root}/{name}", data)
            listed = [{"path": self.key(name), "bytes": stream.size}
                      for name, stream in self.objects.items()]
            listed += [{"path": name, "bytes": len(data)} for name, data in named_sidecars.items()]
            previous = _manifest(self.fs, self.root)
            keep = {entry["path"] for entry in listed}
            replacing = [f["path"] for f in previous["files"] if f["path"] not in keep] if previous else []
            if replacing:
                self._record(replacing=replacing)
            test_pause("commit")
            manifest = {"datakiln_output": MANIFEST_VERSION, "format": format, "rows": rows,
                        "files": listed, "run": self.token, **(extra or {})}
            if sidecars:
                manifest["sidecars"] = sorted(named_sidecars)
            self.fs.pipe_file(f"{self.root}/{MANIFEST}", (json.dumps(manifest, indent=1) + "\n").encode())
        except DatakilnError:
            raise
        except Exception as exc:  # the store's own errors (botocore's are no OSError)
            raise _failure(self.url, exc) from exc
        self._committed = True
        try:  # tidying: what fails here is done by the next write (the run record says what)
            _remove(self.fs, [f"{self.root}/{p}" for p in replacing])
            # the record stays, marked committed, while this manifest is the current one: a
            # writer that read the manifest before this commit and commits after it leaves
            # this run's objects unlisted, and the record is what lets them be deleted
            self._record(committed=True, replacing=[])
            _recover(self.fs, self.root)  # superseded runs, this one included if it lost
        except Exception as exc:  # noqa: BLE001 - tidying only
            log.warning("committed %s, but could not delete the objects it replaced (%s); the next "
                        "write to it will", self.url, type(exc).__name__)
        return [f"{protocol}://{self.root}/{self.key(name)}" for name in self.objects]

    @property
    def bytes(self) -> int:
        """Bytes uploaded so far."""
        return sum(stream.size for stream in self.objects.values())

    def discard(self) -> None:
        """Abort: uploads in progress are aborted, objects already written and the run's record
        are deleted (best effort: what is left is deleted by the next write). Nothing is done
        once :meth:`commit` has committed."""
        if self._committed:
            return
        self.abandon_streams()
        if not self.directory:
            return
        try:
            done = [f"{self.root}/{self.key(name)}" for name in self.objects]
            _remove(self.fs, done)
            _remove(self.fs, [f"{self.root}/{RUNS}/{self.token}.json"])
        except Exception as exc:  # the error that made us discard is the one to report
            log.warning("could not delete the objects of an aborted write under %s: %s", self.url,
                        type(exc).__name__)

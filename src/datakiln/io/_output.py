"""Where an output may go, and how it is put there without losing anything.

datakiln replaces or deletes only what it wrote itself. It recognises its own output by a
mark it leaves:

- a **directory** output holds a manifest, ``_datakiln.json``, listing every file written
  (path and size) with a format version; the directory is datakiln's own while it holds
  nothing the manifest does not list (readers skip the name, as they skip ``_SUCCESS``);
- a **Parquet file** carries the key ``datakiln.output`` in its footer metadata. CSV and
  JSON Lines files cannot carry a mark, so an existing one is never taken for datakiln's;
- a **JSON report** (evaluation, balance, clean, a saved transform) starts with the key
  ``"datakiln": {"kind": ..., "version": ...}`` (:func:`report_marker`); an **HTML report**
  carries ``<meta name="generator" content="datakiln ...">`` in its head
  (:func:`is_own_report` recognises both);
- a **model file** is a zip whose ``manifest.json`` says ``"format": "datakiln.model"``
  (recognised by :mod:`datakiln.synth.modelfile`).

Single-file writers other than datasets (reports, model files) follow the same table with
their own recogniser (the ``is_own`` argument of :func:`check_target` and :func:`commit`).

What happens at the output path (:func:`check_target`):

===========================================  =================  ==================
found at the output path                     overwrite=False    overwrite=True
===========================================  =================  ==================
nothing                                      written            written
an empty directory (directory output)        replaced           replaced
datakiln's own earlier output                replaced           replaced
a file datakiln did not write                refused            replaced
a directory holding files datakiln did not   refused            refused
write (or a directory, for a file output)
an input, a directory holding an input, or   refused            refused
the working directory
===========================================  =================  ==================

A directory with foreign files is refused even with ``overwrite=True``: swapping it would
delete those files, and writing beside them could not be atomic (a reader of the
directory would also read them). Refusals raise :class:`OutputExistsError`.

**Commit.** The new output is written under ``.<name>.tmp-<pid>-<token>`` beside the
target and swapped in with one ``renameat2(RENAME_EXCHANGE)`` (Linux): at every instant the
target holds the complete old output or the complete new one; the old one is then left
under the temporary name and removed. Where the exchange is unavailable, a file is
replaced with one ``rename``; a directory takes two renames, the old output kept under
``.<name>.old-<pid>-<token>`` in between. A writer killed between them leaves that backup,
and the next write to the same place (or :func:`recover`) puts it back.

**Stale temporaries.** A writer holds an ``flock`` on its temporary output and names it
with its process id. The next write to the same target removes temporaries and backups
of that target whose writer is gone (process dead and lock free); other names are never
touched.

**Test-only hooks** (environment variables, read when used; never set them otherwise):
``DATAKILN_TEST_PAUSE_BEFORE_COMMIT=<seconds>`` sleeps at the moment named by
``DATAKILN_TEST_PAUSE_STAGE`` (``commit``, the default: all data written, just before the
rename; ``write``: after the first table reached the temporary output; ``swap``: between
the two renames of the fallback). ``DATAKILN_TEST_PAUSE_FLAG=<path>`` is created when the
pause starts. ``DATAKILN_TEST_NO_EXCHANGE=1`` forces the two-rename fallback.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import logging
import os
import re
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakiln.errors import OutputExistsError

try:
    import fcntl
except ImportError:  # Windows: no flock; temporaries there are never taken for stale
    fcntl = None  # type: ignore[assignment]

__all__ = ["MANIFEST", "PARQUET_MARK", "REPORT_KEY", "TempOutput", "check_inputs", "check_target",
           "commit", "generator_meta", "is_own_parquet", "is_own_report", "recover", "report_marker",
           "source_inputs", "test_pause", "write_manifest"]

log = logging.getLogger(__name__)

MANIFEST = "_datakiln.json"
MANIFEST_VERSION = 1
PARQUET_MARK = "datakiln.output"
REPORT_KEY = "datakiln"
_REPORT_BYTES = 64 * 1024 * 1024  # a larger JSON file is not parsed: not taken for a report
_HEAD_BYTES = 64 * 1024  # an HTML report's generator tag is in its head
_GENERATOR = re.compile(rb"""<meta\s+name=["']generator["']\s+content=["']datakiln[\s"'/>]""",
                        re.IGNORECASE)
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_LEGACY_AGE_S = 3600.0  # temporaries of datakiln < this layout carry no pid: removed when idle 1 h


# -- inputs -----------------------------------------------------------------------------------

def source_inputs(source: Any) -> list[str]:
    """Local paths a source reads (its files and the directory given; a SQLite file), and
    the URLs of the objects it reads from an object store (``s3://bucket/key``)."""
    found: list[str] = []
    files = getattr(source, "files", None)
    if files is not None and type(files.filesystem).__name__ == "LocalFileSystem":
        found.extend(files.paths)
        if files.base:
            found.append(files.base)
    elif files is not None:
        protocol = getattr(getattr(getattr(files.filesystem, "handler", None), "fs", None), "protocol", None)
        protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        if isinstance(protocol, str):
            found.extend(f"{protocol}://{p}" for p in (*files.paths, *([files.base] if files.base else [])))
    url = getattr(source, "url", None)
    if isinstance(url, str) and url.startswith("sqlite") and ":///" in url:
        database = url.split(":///", 1)[1].split("?", 1)[0]
        if database and database != ":memory:":
            found.append(database)
    return found


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def check_inputs(target: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an output that is, or contains, an input, or lies inside an input directory
    (symbolic links resolved)."""
    real = os.path.realpath(target)
    for item in inputs:
        if "://" in os.fspath(item):  # an object-store input cannot be a local output
            continue
        source = os.path.realpath(os.fspath(item))
        if _inside(source, real):
            what = "is" if source == real else "contains"
            raise OutputExistsError(
                f"the output {str(target)!r} {what} the input {os.fspath(item)!r}; writing there "
                "would destroy the data being read. Choose another output path")
        if os.path.isdir(source) and _inside(real, source):
            raise OutputExistsError(
                f"the output {str(target)!r} lies inside the input directory {os.fspath(item)!r}; "
                "the next read of that directory would take the output for data (its rows twice, or a "
                "file that is no data). Choose a path outside it")


# -- what is at the target ------------------------------------------------------------------

@dataclass
class Found:
    """What lies at an output path: ``kind`` and, for a foreign directory, a few names."""

    kind: str  # absent | empty_dir | own_dir | own_file | foreign_file | foreign_dir
    foreign: list[str] = field(default_factory=list)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a datakiln output directory, or None."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("datakiln_output"), int):
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str)
                                              for f in files):
        return None
    return data


def _foreign_entries(directory: Path, limit: int = 5) -> list[str]:
    """Entries of ``directory`` its manifest does not list (all of them without a manifest)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return sorted(os.listdir(directory))[:limit]
    listed = {MANIFEST} | {os.path.normpath(f["path"]) for f in manifest["files"]}
    sizes = {os.path.normpath(f["path"]): f.get("bytes") for f in manifest["files"]}
    foreign: list[str] = []
    for root, dirs, files in os.walk(directory):
        relative_root = os.path.relpath(root, directory)
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                foreign.append(os.path.normpath(os.path.join(relative_root, name)))
        for name in files:
            relative = os.path.normpath(os.path.join(relative_root, name))
            if relative not in listed:
                foreign.append(relative)
            elif isinstance(sizes.get(relative), int) and _size(root, name) != sizes[relative]:
                # a file of datakiln's name that someone rewrote (a split edited by hand):
                # no longer what datakiln wrote, so never replaced
                foreign.append(f"{relative} (changed since datakiln wrote it)")
        if len(foreign) >= limit:
            break
    return foreign[:limit]


def _size(root: str, name: str) -> int | None:
    try:
        return os.lstat(os.path.join(root, name)).st_size
    except OSError:
        return None


def _is_own_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file datakiln wrote (its footer mark)."""
    try:
        import pyarrow.parquet as pq

        metadata = pq.read_metadata(str(path)).metadata or {}
    except Exception:  # not Parquet, unreadable: not ours
        return False
    return PARQUET_MARK.encode() in metadata


is_own_parquet = _is_own_parquet


def report_marker(kind: str) -> dict[str, dict[str, str]]:
    """The first key of a JSON report datakiln writes: ``{"datakiln": {"kind", "version"}}``.

    >>> text = json.dumps({**report_marker("evaluation-report"), **data})  # doctest: +SKIP
    """
    from datakiln import __version__

    return {REPORT_KEY: {"kind": kind, "version": __version__}}


def generator_meta() -> str:
    """The ``<meta name="generator">`` tag that marks an HTML report as datakiln's."""
    from datakiln import __version__

    return f'<meta name="generator" content="datakiln {__version__}">'


def is_own_report(path: Path) -> bool:
    """Whether ``path`` is a JSON or HTML report datakiln wrote (:func:`report_marker`,
    :func:`generator_meta`); unreadable or oversized files are not."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(_HEAD_BYTES)
            if _GENERATOR.search(head):
                return True
            if not head.lstrip().startswith(b"{") or os.fstat(stream.fileno()).st_size > _REPORT_BYTES:
                return False
            data = json.loads(head + stream.read())
    except (OSError, ValueError, RecursionError):
        return False
    marker = data.get(REPORT_KEY) if isinstance(data, dict) else None
    return isinstance(marker, dict) and isinstance(marker.get("kind"), str)


def inspect_target(target: Path, is_own: Callable[[Path], bool] = _is_own_parquet) -> Found:
    """Classify what lies at ``target`` (symbolic links count as foreign files); ``is_own``
    recognises datakiln's own file output (default: a marked Parquet file)."""
    if not os.path.lexists(target):
        return Found("absent")
    if target.is_symlink() or not target.is_dir():
        return Found("own_file" if target.is_file() and not target.is_symlink()
                     and is_own(target) else "foreign_file")
    if not any(os.scandir(target)):
        return Found("empty_dir")
    foreign = _foreign_entries(target)
    return Found("foreign_dir", foreign) if foreign else Found("own_dir")


def _special_kind(target: Path) -> str | None:
    """What ``target`` (followed through links) is when it is neither file nor directory."""
    try:
        mode = os.stat(target).st_mode
    except OSError:  # absent, or a dangling link: nothing special to lose
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), None)


def check_target(target: Path, *, directory: bool, overwrite: bool,
                 is_own: Callable[[Path], bool] = _is_own_parquet) -> Found:
    """Raise :class:`OutputExistsError` unless the output may be written at ``target``."""
    shown = str(target)
    special = _special_kind(target)
    if special is not None:  # the rename that commits an output would replace the node itself
        raise OutputExistsError(
            f"the output {shown!r} is {special}, not a regular file; datakiln writes a file beside "
            "it and renames it into place, which would remove the device or pipe (even with "
            "overwrite=True). Write to a file path, then copy it there if needed")
    found = inspect_target(target, is_own)
    if found.kind in ("empty_dir", "foreign_dir") and not directory:
        raise OutputExistsError(
            f"the output {shown!r} is a directory datakiln did not write; name a file inside it, "
            f"e.g. {str(target / 'out.parquet')!r}")
    if found.kind == "foreign_dir":
        names = ", ".join(found.foreign) + (", ..." if len(found.foreign) >= 5 else "")
        raise OutputExistsError(
            f"the output directory {shown!r} holds files datakiln did not write ({names}); "
            "datakiln never deletes or mixes with them, even with overwrite=True (--overwrite). "
            "Write to a new or empty directory, or move those files away")
    here = os.path.realpath(os.getcwd())
    if found.kind != "absent" and _inside(here, os.path.realpath(target)):
        raise OutputExistsError(
            f"the output {shown!r} is (or contains) the working directory {here!r}; datakiln "
            "replaces an output directory as a whole. Write to a new sub-directory instead")
    if found.kind == "foreign_file" and not overwrite:
        raise OutputExistsError(
            f"{shown!r} already exists and datakiln did not write it (it replaces only its own "
            "output, recognised by a mark: Parquet files, output directories, model files, JSON "
            "and HTML reports); pass overwrite=True (--overwrite) to replace it, or choose "
            "another path")
    return found


# -- temporaries -----------------------------------------------------------------------------

def _stale_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\." + re.escape(name) + r"\.(tmp|old)-(?:(\d+)-)?([0-9a-f]{8})")


class TempOutput:
    """A temporary output beside ``target``, locked (``flock``) while this writer lives."""

    def __init__(self, target: Path, *, directory: bool, kind: str = "tmp") -> None:
        self.target = target
        self.path = target.parent / f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if directory:
            self.path.mkdir()
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Drop the lock (the path stays)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Remove the temporary output and drop the lock."""
        _remove(self.path)
        self.release()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _writer_gone(path: Path, pid: int | None) -> bool:
    if pid is None:  # an older datakiln's temporary: no pid, no lock
        try:
            return time.time() - path.lstat().st_mtime > _LEGACY_AGE_S
        except OSError:
            return False
    if pid == os.getpid() or fcntl is None:  # (os.kill(pid, 0) is not a probe on Windows)
        return False
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        pass
    except PermissionError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # another machine or pid namespace still writes it
    finally:
        os.close(fd)
    return True


def recover(target: str | os.PathLike[str]) -> list[str]:
    """Tidy after writers of ``target`` that were killed; returns what was done.

    A backup left between the two renames of the fallback commit is put back when the
    target is missing (else removed); temporaries of dead writers are removed. Names not
    made by datakiln for this target, and those of live writers, are never touched.
    """
    target = Path(target)
    pattern = _stale_pattern(target.name)
    done: list[str] = []
    try:
        entries = sorted(os.scandir(target.parent), key=lambda e: e.name)
    except OSError:
        return done
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match:
            continue
        path = Path(entry.path)
        pid = int(match.group(2)) if match.group(2) else None
        if not _writer_gone(path, pid):
            continue
        if match.group(1) == "old" and not os.path.lexists(target):
            os.rename(path, target)
            done.append(f"restored {target} from {path.name}")
            log.warning("restored %s from the backup a killed writer left", target)
        else:
            _remove(path)
            done.append(f"removed {path.name}")
    return done


# -- manifest and commit --------------------------------------------------------------------

def write_manifest(directory: Path, files: Iterable[Path], *, format: str, rows: int | None,
                   extra: dict[str, Any] | None = None) -> None:
    """Write ``_datakiln.json`` listing ``files`` (paths inside ``directory``); ``extra``
    adds keys (``partition_schema``: the types of hive partition columns)."""
    listed = [{"path": os.path.relpath(f, directory), "bytes": f.stat().st_size} for f in files]
    data = {"datakiln_output": MANIFEST_VERSION, "format": format, "rows": rows, "files": listed,
            **(extra or {})}
    (directory / MANIFEST).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def test_pause(stage: str) -> None:
    """The test-only pause (see the module docstring); does nothing unless asked."""
    seconds = os.environ.get("DATAKILN_TEST_PAUSE_BEFORE_COMMIT")
    if not seconds or os.environ.get("DATAKILN_TEST_PAUSE_STAGE", "commit") != stage:
        return
    flag = os.environ.get("DATAKILN_TEST_PAUSE_FLAG")
    if flag:
        Path(flag).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(float(seconds))


@functools.lru_cache(maxsize=1)
def _renameat2_function() -> Any:
    if sys.platform != "linux":
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
    return function


def _renameat2(source: Path, destination: Path, flags: int) -> bool:
    """``renameat2``; False where the system or filesystem lacks it."""
    function = _renameat2_function()
    if function is None or os.environ.get("DATAKILN_TEST_NO_EXCHANGE"):
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(destination))


def commit(temp: TempOutput, *, directory: bool, overwrite: bool,
           is_own: Callable[[Path], bool] = _is_own_parquet) -> None:
    """Put ``temp`` in place of its target, atomically (see the module docstring)."""
    target = temp.target
    test_pause("commit")
    found = check_target(target, directory=directory, overwrite=overwrite, is_own=is_own)
    if found.kind == "absent":
        try:
            done = _renameat2(temp.path, target, _RENAME_NOREPLACE)
        except FileExistsError as exc:
            raise OutputExistsError(f"{str(target)!r} appeared while datakiln wrote it; "
                                    "nothing was replaced") from exc
        if not done:
            os.rename(temp.path, target)
    elif _renameat2(temp.path, target, _RENAME_EXCHANGE):
        _remove(temp.path)  # the old output, now under the temporary name
    elif not directory and found.kind in ("own_file", "foreign_file"):
        os.replace(temp.path, target)
    else:
        backup = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(target, backup)
        test_pause("swap")
        os.rename(temp.path, target)
        _remove(backup)
    temp.release()

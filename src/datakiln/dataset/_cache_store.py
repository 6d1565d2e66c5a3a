"""One shared cache directory with a byte limit: LRU eviction that never removes an entry in use.

``Dataset.cache()`` without a path and the pipeline runner (:mod:`datakiln.pipeline`) store
their outputs here, one entry per key. The directory is chosen by ``cache_dir=``, else the
``DATAKILN_CACHE_DIR`` environment variable, else ``$XDG_CACHE_HOME/datakiln`` (default
``~/.cache/datakiln``). Layout::

    <root>/entries/<key>/          the entry's files and ``entry.json`` (the datakiln mark,
                                   listing every file it holds and their bytes)
    <root>/locks/<key>.lock        flock target: shared while an entry is open or mapped,
                                   exclusive while it is being evicted
    <root>/tmp/                    entries being built (renamed into entries/ when complete)
    <root>/stats.json              hit / miss / eviction counts (updated under a lock)

There is no index to corrupt: recency is the modification time of each entry's
``entry.json`` (touched on every hit), sizes come from the marks. An entry appears in one
``rename`` of a complete directory, so readers see the whole entry or none. Eviction runs
under ``<root>/evict.lock``, oldest first, and skips any entry whose lock someone holds
shared (a process that has it open); it deletes only the files the mark lists, so a file
someone else put into an entry directory is never removed (the directory then stays).
Everything uses ``fcntl.flock`` and ``os.replace`` and is safe across processes; it is
POSIX-only (on other systems locking is a no-op and entries in use may be evicted).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakiln.errors import InvalidArgumentError, WriteError
from datakiln.units import format_bytes, parse_bytes

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CacheEntry", "CacheStore", "default_cache_dir"]

MARK = "entry.json"
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
DEFAULT_LIMIT = "20GB"
LOCK_WAIT_SECONDS = 10.0  # how long replacing an entry waits for its readers before an error


def default_cache_dir() -> Path:
    """``$DATAKILN_CACHE_DIR``, else ``$XDG_CACHE_HOME/datakiln``, else ``~/.cache/datakiln``."""
    chosen = os.environ.get("DATAKILN_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "datakiln"


def _lock(handle: Any, mode: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(handle.fileno(), mode)
        return True
    except BlockingIOError:
        return False


@dataclass
class CacheEntry:
    """An entry held open: its directory, its metadata, and a shared lock until ``close``."""

    key: str
    path: Path
    meta: dict[str, Any]
    _handle: Any = None

    def file(self, name: str) -> Path:
        """The path of one of the entry's files."""
        return self.path / name

    def close(self) -> None:
        """Release the shared lock (the entry may be evicted afterwards)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def hold_while(self, owner: object) -> None:
        """Keep the lock until ``owner`` is garbage-collected (e.g. a memory-mapped source)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            weakref.finalize(owner, handle.close)

    def __enter__(self) -> CacheEntry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CacheStore:
    """A cache directory with a byte limit (see the module docstring).

    Parameters
    ----------
    cache_dir : str or path, optional
        The directory (default: :func:`default_cache_dir`).
    cache_limit : str or int, default "20GB"
        Most bytes the entries may hold; the least recently used entries not in use are
        evicted after each new entry. ``None`` means no limit.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None,
                 cache_limit: str | int | None = DEFAULT_LIMIT) -> None:
        self.root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.limit = parse_bytes(cache_limit, name="cache_limit")
        self.hits = self.misses = self.evictions = 0  # this process, this store object

    # -- paths and locks -------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create the cache directory {str(path)!r}: {exc}; set "
                             "cache_dir= or DATAKILN_CACHE_DIR to a writable place") from exc
        return path

    def _check(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidArgumentError(f"a cache key must be 1-128 letters, digits, '_', '-' or '.', "
                                       f"got {key!r}")
        return key

    def _lock_file(self, key: str) -> Any:
        return open(self._dir("locks") / f"{key}.lock", "a+b")  # noqa: SIM115 - held by the entry

    def entry_path(self, key: str) -> Path:
        """Where the entry of ``key`` lives (whether or not it exists)."""
        return self.root / "entries" / self._check(key)

    @staticmethod
    def _read_mark(path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((path / MARK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("datakiln") == "cache-entry" else None

    # -- reading ---------------------------------------------------------------------------
    def contains(self, key: str) -> bool:
        """Whether a complete entry for ``key`` exists (counts nothing, touches nothing)."""
        return self._read_mark(self.entry_path(key)) is not None

    def open(self, key: str, *, count: bool = True) -> CacheEntry | None:
        """The entry for ``key``, locked shared and marked as just used; None (a miss) if absent.

        ``count=False`` opens an entry just built without counting a hit."""
        path = self.entry_path(key)
        handle = self._lock_file(key)
        _lock(handle, fcntl.LOCK_SH if fcntl else 0)
        meta = self._read_mark(path)
        if meta is None:
            handle.close()
            if count:
                self.misses += 1
                self._count(misses=1)
            return None
        with contextlib.suppress(OSError):
            os.utime(path / MARK)  # recency for LRU
        if count:
            self.hits += 1
            self._count(hits=1)
        return CacheEntry(key, path, meta, handle)

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def build(self, key: str, meta: dict[str, Any] | None = None) -> Iterator[Path]:
        """Write a new entry: yields an empty directory to fill; on success it becomes the
        entry of ``key`` in one rename (an existing one is replaced), then eviction runs.
        On an error the partial directory is removed and nothing changes."""
        target = self.entry_path(key)
        temp = self._dir("tmp") / f"{key}.{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            yield temp
            files = {str(p.relative_to(temp)): p.stat().st_size for p in temp.rglob("*") if p.is_file()}
            mark = {"datakiln": "cache-entry", "key": key, "files": files,
                    "bytes": sum(files.values()), "created": time.time(), **(meta or {})}
            (temp / MARK).write_text(json.dumps(mark, default=str), encoding="utf-8")
            self._dir("entries")
            with self._lock_file(key) as handle:
                self._wait_exclusive(handle, key)  # readers of the old entry finish first
                if target.exists():
                    self._remove(target)
                os.replace(temp, target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)  # our own temporary directory only
            raise
        self.evict(keep={key})

    def _wait_exclusive(self, handle: Any, key: str) -> None:
        """Lock ``key`` exclusively, waiting up to ``LOCK_WAIT_SECONDS`` for its readers."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not _lock(handle, (fcntl.LOCK_EX | fcntl.LOCK_NB) if fcntl else 0):
            if time.monotonic() > deadline:
                raise WriteError(f"the cache entry {key!r} in {str(self.root)!r} is open (a Dataset "
                                 "reading it, here or in another process); release it (del the "
                                 "Dataset) or retry later to replace it")
            time.sleep(0.05)

    def _remove(self, path: Path) -> None:
        """Delete only the files the mark lists (plus the mark), then the empty directories."""
        meta = self._read_mark(path)
        if meta is None:
            return
        for name in meta.get("files", {}):
            (path / name).unlink(missing_ok=True)
        (path / MARK).unlink(missing_ok=True)
        for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            path.rmdir()  # stays if someone put a file of their own in it

    # -- size and eviction -----------------------------------------------------------------
    def entries(self) -> list[tuple[str, int, float]]:
        """(key, bytes, last used as a Unix time) of every complete entry, oldest first."""
        found = []
        folder = self.root / "entries"
        for path in folder.iterdir() if folder.is_dir() else ():
            meta = self._read_mark(path)
            if meta is None:
                continue
            with contextlib.suppress(OSError):
                found.append((path.name, int(meta.get("bytes", 0)), (path / MARK).stat().st_mtime))
        return sorted(found, key=lambda item: item[2])

    def size(self) -> int:
        """Bytes held by all complete entries."""
        return sum(size for _, size, _ in self.entries())

    def evict(self, keep: set[str] | frozenset[str] = frozenset(), limit: int | None = None) -> list[str]:
        """Evict least recently used entries until the total fits ``limit`` (default: the
        store's); entries in use (locked by anyone) and those in ``keep`` stay. Returns the
        keys evicted."""
        limit = self.limit if limit is None else limit
        if limit is None:
            return []
        evicted: list[str] = []
        with open(self._dir("locks") / "evict.lock", "a+b") as guard:
            _lock(guard, fcntl.LOCK_EX if fcntl else 0)
            entries = self.entries()
            total = sum(size for _, size, _ in entries)
            for key, size, _ in entries:
                if total <= limit:
                    break
                if key in keep:
                    continue
                with self._lock_file(key) as handle:
                    if not _lock(handle, (fcntl.LOCK_EX | fcntl.LOCK_NB) if fcntl else 0):
                        continue  # open in some process: never evicted
                    self._remove(self.entry_path(key))
                evicted.append(key)
                total -= size
        if evicted:
            self.evictions += len(evicted)
            self._count(evictions=len(evicted))
        return evicted

    # -- statistics ------------------------------------------------------------------------
    def _count(self, **increments: int) -> None:
        path = self.root / "stats.json"
        try:
            with open(self._dir("locks") / "stats.lock", "a+b") as guard:
                _lock(guard, fcntl.LOCK_EX if fcntl else 0)
                try:
                    counts = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    counts = {}
                for name, value in increments.items():
                    counts[name] = int(counts.get(name, 0)) + value
                temp = path.with_name(f".stats.{uuid.uuid4().hex[:8]}")
                temp.write_text(json.dumps(counts), encoding="utf-8")
                os.replace(temp, path)
        except (OSError, WriteError):
            pass  # counts are advisory; a read-only cache still serves entries

    @property
    def stats(self) -> dict[str, Any]:
        """Counts for this store object (``hits``, ``misses``, ``evictions``), the totals of
        every process (``total_hits`` ...), and ``entries``, ``bytes``, ``limit``."""
        try:
            totals = json.loads((self.root / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            totals = {}
        entries = self.entries()
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                **{f"total_{k}": int(totals.get(k, 0)) for k in ("hits", "misses", "evictions")},
                "entries": len(entries), "bytes": sum(s for _, s, _ in entries), "limit": self.limit,
                "dir": str(self.root)}

    def __repr__(self) -> str:
        limit = "no limit" if self.limit is None else format_bytes(self.limit)
        return f"CacheStore({str(self.root)!r}, limit={limit})"

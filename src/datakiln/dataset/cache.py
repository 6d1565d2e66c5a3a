"""A local, fingerprinted, memory-mappable copy of any dataset: convert once, read at random.

``Dataset.cache(path)`` streams the rows into an uncompressed Arrow IPC file (record
batches of 131,072 to 1,048,576 rows: large batches, e.g. of a Parquet row group, are
written as they come, without a copy; small ones are combined) with a ``<path>.json`` sidecar
holding the source fingerprint.
Calling it again with unchanged content reuses the file; a cache of files also needs the
files' paths, sizes and modification times unchanged (a value edited in place can leave
the hashed footer or samples as they were), so touching or moving them rebuilds it.
The file is memory-mapped on read, so random access (the loader's exact shuffle) touches
only the pages it needs.

Without a path (``ds.cache()``) the copy goes into the shared cache directory
(:class:`datakiln.dataset._cache_store.CacheStore`: ``cache_dir=``, ``DATAKILN_CACHE_DIR``
or ``~/.cache/datakiln``) under a byte limit (``cache_limit="20GB"``), evicting the least
recently used entries; an entry stays locked (never evicted) while a Dataset reads it, and
the store's ``stats`` count hits and misses.

The cache key is the dataset's content fingerprint (:mod:`datakiln.dataset._identity`):
file contents, table buffers, and the code, defaults, closure values and globals of every
``map_batches`` function. What has no cheap content identity is refused rather than
served stale: a SQL query needs ``key=`` (a string the caller changes when the data
changes) or ``refresh=True``; a function holding an object that cannot be identified (a
fitted model, a connection, a random generator) needs ``key=``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.ipc as ipc

from datakiln.dataset._identity import Unidentifiable, is_query
from datakiln.errors import InvalidArgumentError, OutputExistsError, WriteError

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["CACHE_BATCH_ROWS", "cache_dataset", "cache_in_store", "cache_key", "cache_stats"]

CACHE_BATCH_ROWS = 1 << 20  # few, large record batches: random gathers resolve chunks cheaply
MIN_BATCH_ROWS = 1 << 17  # batches this large are written as they come, without a combining copy
CACHE_VERSION = 3  # 3: batches of 131,072 to 1,048,576 rows (2: exactly 1,048,576)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _refuse_foreign(dataset: Dataset, target: Path, sidecar: Path) -> None:
    """Never overwrite an input, nor a file that is not a cache datakiln wrote."""
    files = getattr(dataset.source, "files", None)
    inputs = {os.path.realpath(p) for p in getattr(files, "paths", ())}
    if os.path.realpath(target) in inputs:
        raise OutputExistsError(f"the cache path {str(target)!r} is an input of this dataset; "
                                "choose another path for the cache")
    from datakiln.io.write import check_inputs, source_inputs

    check_inputs(target, source_inputs(dataset.source))  # nor inside a directory being read
    if target.exists() and not sidecar.exists():
        raise OutputExistsError(
            f"{str(target)!r} exists and is not a datakiln cache (no {sidecar.name} beside it); "
            "choose another path, or remove that file yourself if it is expendable")


def _file_stamp(dataset: Dataset) -> str | None:
    """Paths, sizes and modification times of the source files (None for other sources).

    The content fingerprint hashes a Parquet footer, or a file's head, tail and samples: a
    value changed in place (one label fixed) can leave those bytes and the size unchanged.
    So a cache of files is reused only while the files also keep the paths, sizes and
    modification times it was built from; any change rebuilds it (never stale rows)."""
    files = getattr(dataset.source, "files", None)
    stamp = getattr(files, "fingerprint", None)
    return stamp() if callable(stamp) else None


def cache_key(dataset: Dataset, key: str | None = None) -> str:
    """The fingerprint a cache of ``dataset`` is stored under (see the module docstring)."""
    if key is not None:
        return f"key:{key}:{dataset._fingerprint(strict=False)}"
    if is_query(dataset.source):
        raise InvalidArgumentError(
            f"cannot tell whether the rows of {dataset.source.name!r} changed since they were "
            "cached (a database query has no cheap content signature); pass key='...' (change "
            "it when the data changes, e.g. a snapshot date) or refresh=True to rebuild")
    try:
        return dataset._fingerprint(strict=True)
    except Unidentifiable as exc:
        raise InvalidArgumentError(
            f"cannot cache {dataset!r}: {exc.what} has no content identity, so a change to it "
            "would go unnoticed; pass key='...' naming that state (change it when it changes) "
            "or refresh=True to rebuild") from None


def write_arrow(dataset: Dataset, target: Path) -> int:
    """Stream ``dataset`` into the Arrow IPC file ``target``; returns the rows written."""
    rows = 0
    with pa.OSFile(str(target), "wb") as sink, ipc.new_file(sink, dataset.arrow_schema) as writer:
        for batch in _large_batches(dataset):
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _large_batches(dataset: Dataset) -> Iterator[pa.RecordBatch]:
    """Record batches of at least :data:`MIN_BATCH_ROWS` rows (the last may be short).

    A table whose batches are already that large is written as it comes (a Parquet row
    group: no copy); smaller ones are gathered and combined into :data:`CACHE_BATCH_ROWS`.
    """
    pending: list[pa.Table] = []
    have = 0
    for table in dataset._tables():
        batches = table.to_batches(max_chunksize=CACHE_BATCH_ROWS)
        if not pending and all(b.num_rows >= MIN_BATCH_ROWS for b in batches):
            yield from batches
            continue
        pending.append(table)
        have += table.num_rows
        if have >= CACHE_BATCH_ROWS:
            yield from pa.concat_tables(pending).combine_chunks().to_batches(max_chunksize=CACHE_BATCH_ROWS)
            pending, have = [], 0
    if have:
        yield from pa.concat_tables(pending).combine_chunks().to_batches()


def cache_in_store(dataset: Dataset, *, key: str | None = None, refresh: bool = False,
                   cache_dir: str | os.PathLike[str] | None = None,
                   cache_limit: str | int | None = "20GB") -> Dataset:
    """Write (or reuse) the cache of ``dataset`` in the shared, size-limited cache directory.

    The entry is keyed by a SHA-256 of the content fingerprint (and the files' stamp, as
    for a path); the returned Dataset memory-maps it and holds a shared lock on it until
    the Dataset's source is garbage-collected, so no process evicts it while in use.
    """
    from datakiln.dataset._cache_store import CacheStore
    from datakiln.dataset.reading import read

    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidArgumentError(f"key must be a non-empty string, got {key!r}")
    store = CacheStore(cache_dir, cache_limit)
    try:
        fingerprint = cache_key(dataset, key)
    except InvalidArgumentError:
        if not refresh:
            raise
        fingerprint = f"refreshed:{dataset._fingerprint(strict=False)}:{uuid.uuid4().hex}"
    text = json.dumps([CACHE_VERSION, fingerprint, _file_stamp(dataset)], default=str)
    digest = "ds-" + hashlib.sha256(text.encode()).hexdigest()[:40]
    entry = None if refresh else store.open(digest)
    if entry is None:
        try:
            with store.build(digest, {"kind": "dataset"}) as folder:
                write_arrow(dataset, folder / "data.arrow")
        except OSError as exc:
            raise WriteError(f"cannot write the cache entry in {str(store.root)!r}: {exc}") from exc
        entry = store.open(digest, count=False)
        if entry is None:  # evicted between build and open: only with a limit below one entry
            raise WriteError(f"the cache entry does not fit cache_limit={cache_limit!r} in "
                             f"{str(store.root)!r}; raise the limit")
    result = read(entry.file("data.arrow"), format="arrow")
    entry.hold_while(result.source)
    return result


def cache_stats(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """Hit, miss and eviction totals (every process) and the size of the shared cache."""
    from datakiln.dataset._cache_store import CacheStore

    return CacheStore(cache_dir, None).stats


def cache_dataset(dataset: Dataset, path: str | os.PathLike[str], *, key: str | None = None,
                  refresh: bool = False) -> Dataset:
    """Write (or reuse) the cache of ``dataset`` at ``path`` and return a Dataset over it."""
    from datakiln.dataset.reading import read

    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidArgumentError(f"key must be a non-empty string, got {key!r}")
    target = Path(path).expanduser().absolute()
    try:
        fingerprint = cache_key(dataset, key)
    except InvalidArgumentError:
        if not refresh:
            raise
        fingerprint = f"refreshed:{dataset._fingerprint(strict=False)}"  # never reused unasked
    meta = {"version": CACHE_VERSION, "fingerprint": fingerprint, "files": _file_stamp(dataset)}
    sidecar = _sidecar(target)
    _refuse_foreign(dataset, target, sidecar)
    if not refresh and target.exists() and sidecar.exists():
        try:
            stored = json.loads(sidecar.read_text(encoding="utf-8"))
            if ({k: stored.get(k) for k in meta} == meta
                    and stored.get("bytes") == target.stat().st_size):
                return read(target, format="arrow")
        except (OSError, json.JSONDecodeError, AttributeError):
            pass  # unreadable sidecar: rebuild the cache
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    temp = target.with_name(f".{target.name}.tmp-{token}")
    try:
        rows = write_arrow(dataset, temp)
        temp_meta = sidecar.with_name(f".{sidecar.name}.tmp-{token}")
        # first mark the cache as being rebuilt: a crash before the last rename leaves a key
        # that matches nothing (a rebuild next time, never stale rows served)
        temp_meta.write_text(json.dumps({"version": CACHE_VERSION, "fingerprint": None}),
                             encoding="utf-8")
        os.replace(temp_meta, sidecar)
        os.replace(temp, target)
        temp_meta.write_text(json.dumps(meta | {"rows": rows, "bytes": target.stat().st_size}),
                             encoding="utf-8")
        os.replace(temp_meta, sidecar)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise WriteError(f"cannot write the cache {str(target)!r}: {exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return read(target, format="arrow")

"""A local, fingerprinted, memory-mappable copy of any dataset: convert once, read at random.

``Dataset.cache(path)`` streams the rows into an uncompressed Arrow IPC file (record
batches of 1,048,576 rows) with a ``<path>.json`` sidecar holding the source fingerprint.
Calling it again with an unchanged source reuses the file. The file is memory-mapped on
read, so random access (the loader's exact shuffle) touches only the pages it needs.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.ipc as ipc

from datakiln.errors import WriteError

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["CACHE_BATCH_ROWS", "cache_dataset"]

CACHE_BATCH_ROWS = 1 << 20  # few, large record batches: random gathers resolve chunks cheaply
CACHE_VERSION = 1


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def cache_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> Dataset:
    """Write (or reuse) the cache of ``dataset`` at ``path`` and return a Dataset over it."""
    from datakiln.dataset.reading import read

    target = Path(path).expanduser().absolute()
    meta = {"version": CACHE_VERSION, "fingerprint": dataset.fingerprint}
    sidecar = _sidecar(target)
    if target.exists() and sidecar.exists():
        try:
            if json.loads(sidecar.read_text(encoding="utf-8")) | {"rows": 0} == meta | {"rows": 0}:
                return read(target, format="arrow")
        except (OSError, json.JSONDecodeError):
            pass  # unreadable sidecar: rebuild the cache
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    temp = target.with_name(f".{target.name}.tmp-{token}")
    rows = 0
    try:
        with pa.OSFile(str(temp), "wb") as sink, ipc.new_file(sink, dataset.arrow_schema) as writer:
            for batch in dataset.iter_batches(batch_rows=CACHE_BATCH_ROWS):
                writer.write_batch(batch)
                rows += batch.num_rows
        os.replace(temp, target)
        temp_meta = sidecar.with_name(f".{sidecar.name}.tmp-{token}")
        temp_meta.write_text(json.dumps(meta | {"rows": rows}), encoding="utf-8")
        os.replace(temp_meta, sidecar)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise WriteError(f"cannot write the cache {str(target)!r}: {exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return read(target, format="arrow")

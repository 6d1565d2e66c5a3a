"""Duplicate rows, exact or on a subset of columns, keeping the first or last occurrence.

Out of core: a ``prepare`` pass hashes every row (64-bit) and spills ``(hash, row
number)`` pairs into 16 partition files by the hash's top bits; each partition is then
sorted on its own, so memory holds one sixteenth of the pairs at a time plus the row
numbers of the duplicates. Two different rows share a 64-bit hash with probability
about ``rows² / 2**65`` (≈ 7e-5 for 50 million rows).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from datakiln.clean.base import Step, row_hashes
from datakiln.clean.report import StepReport
from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["DropDuplicates"]

PARTITIONS = 16


class DropDuplicates(Step):
    """Drop rows equal to an earlier (``keep="first"``) or later (``"last"``) row.

    ``subset``: the columns that define "equal" (default: all columns).
    """

    name = "duplicates"
    row_wise = False

    def __init__(self, *, subset: list[str] | None = None, keep: str = "first") -> None:
        self.subset = subset
        self.keep = keep

    def prepare(self, dataset: Dataset, memory_budget: int | None) -> None:
        if self.keep not in ("first", "last"):
            raise InvalidArgumentError(f"keep must be 'first' or 'last', got {self.keep!r}")
        columns = list(self.subset) if self.subset else dataset.columns
        missing = [c for c in columns if c not in dataset.columns]
        if missing:
            raise SchemaError(f"duplicates subset names unknown columns {missing}")
        folder = Path(tempfile.mkdtemp(prefix="kiln-dedup-"))
        try:
            files = [open(folder / f"part{i}.bin", "wb") for i in range(PARTITIONS)]  # noqa: SIM115
            offset = 0
            try:
                for table in dataset.select(columns)._tables(memory_budget=memory_budget):
                    hashes = row_hashes(table, columns)
                    rows = np.arange(offset, offset + table.num_rows, dtype=np.uint64)
                    offset += table.num_rows
                    part = (hashes >> np.uint64(60)).astype(np.intp)
                    for index in np.unique(part):
                        chosen = part == index
                        files[index].write(np.column_stack([hashes[chosen], rows[chosen]]).tobytes())
            finally:
                for handle in files:
                    handle.close()
            duplicates = [self._duplicates_in(folder / f"part{i}.bin") for i in range(PARTITIONS)]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.duplicates_ = np.sort(np.concatenate(duplicates)) if duplicates else np.zeros(0, np.uint64)
        self._offset = 0

    def _duplicates_in(self, path: Path) -> np.ndarray:
        pairs = np.fromfile(path, dtype=np.uint64).reshape(-1, 2)
        if len(pairs) == 0:
            return np.zeros(0, dtype=np.uint64)
        hashes, rows = pairs[:, 0], pairs[:, 1]
        order = np.lexsort((rows if self.keep == "first" else np.iinfo(np.uint64).max - rows, hashes))
        sorted_hashes = hashes[order]
        repeat = np.r_[False, sorted_hashes[1:] == sorted_hashes[:-1]]
        return rows[order][repeat]

    def apply(self, table: pa.Table, report: StepReport) -> pa.Table:
        start, stop = self._offset, self._offset + table.num_rows
        self._offset = stop
        low, high = np.searchsorted(self.duplicates_, [start, stop])
        if low == high:
            return table
        drop = (self.duplicates_[low:high] - np.uint64(start)).astype(np.int64)
        keep = np.ones(table.num_rows, dtype=bool)
        keep[drop] = False
        report.count("(rows)", "duplicate rows dropped", int(high - low))
        return table.filter(pa.array(keep))

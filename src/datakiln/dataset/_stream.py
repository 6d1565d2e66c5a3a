"""Shuffled streams for sources that cannot be read at random: block shuffle + buffer.

The read tasks (Parquet row groups, CSV byte ranges) are visited in a seeded random order
(when the source allows; a SQL cursor is read in order) and their rows pass through a
shuffle buffer of ``buffer_rows`` rows: whenever it is full, it is permuted and half of it
is emitted, so every emitted stretch mixes rows from many blocks. Memory is the buffer
plus the read tasks in flight. The stream is a pure function of the seed and the data,
so resuming replays it and skips what was consumed.

Quality measure (documented and tested): rows of one emitted batch should come from many
source blocks: with a buffer of ``k`` blocks, a batch draws from about ``min(k, batch)``
distinct blocks, and the rank correlation between source position and emitted position
is near zero once the block order is shuffled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from datakiln.dataset._executor import ordered_map

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["shuffled_stream"]


def shuffled_stream(dataset: Dataset, key: int, buffer_rows: int, *, shuffle: bool = True,
                    threads: int | None = None) -> Iterator[pa.Table]:
    """The dataset's rows as a seeded shuffled stream of tables (see the module docstring)."""
    rng = np.random.default_rng(key)
    source_tables = _blocks(dataset, rng if shuffle else None, threads)
    if not shuffle:
        yield from source_tables
        return
    buffer: list[pa.Table] = []
    held = 0
    for table in source_tables:
        buffer.append(table)
        held += table.num_rows
        if held >= buffer_rows:
            mixed = _permuted(pa.concat_tables(buffer), rng)
            half = mixed.num_rows // 2
            yield mixed.slice(0, half)
            buffer, held = [mixed.slice(half)], mixed.num_rows - half
    if held:
        yield _permuted(pa.concat_tables(buffer), rng)


def _permuted(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    return table.take(pa.array(rng.permutation(table.num_rows))).combine_chunks()


def _blocks(dataset: Dataset, rng: np.random.Generator | None, threads: int | None) -> Iterator[pa.Table]:
    """Tables of the plan, in a shuffled block order when the source's tasks allow it."""
    if rng is None or dataset._ops or not dataset.source.tasks_are_independent:
        yield from dataset._tables()
        return
    tasks = list(dataset.source.read_tasks())
    order = rng.permutation(len(tasks))
    yield from ordered_map((tasks[i] for i in order), None, threads=threads)

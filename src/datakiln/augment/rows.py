"""Augmented copies of a Dataset's rows: a text column (EDA ops) or numeric columns (tables).

:func:`augment_rows` is what ``kiln augment data.csv --text-column message --ops
"synonym:0.1; swap:0.1" -n 4 -o out.parquet`` runs. Row ``i`` of the input (its position,
counted from 0) is the row id every draw is keyed by, and copy ``k`` draws from the
stream ``copy/k``; so the output is a pure function of (input, ops, ``n``, seed), whatever
the batch size.

* **Text ops** stream: each input batch becomes ``n`` copies of each row, the text column
  augmented and every other column repeated; memory is bounded by the batch.
* **Table ops** (:class:`~datakiln.augment.tabular.GaussianJitter`,
  :class:`~datakiln.augment.tabular.TabularMixUp`) read the table into memory once: the
  jitter is fitted on all rows (each column's spread) and MixUp draws partners from all
  rows.

The output has the input's columns plus ``copy`` (int64, the copy number), rows ordered
by input row, then copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from datakiln.augment.base import Augmenter, Compose, OneOf, RandomApply
from datakiln.augment.tabular import GaussianJitter, TabularMixUp, table_copies
from datakiln.augment.text import EDA, TextBatch, _TextOp, augment_copies
from datakiln.dataset.dataset import as_dataset
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["augment_rows", "op_kind"]

COPY_COLUMN = "copy"


def _leaves(op: Augmenter) -> Iterator[Augmenter]:
    if isinstance(op, Compose):
        for inner in op.ops:
            yield from _leaves(inner)
    elif isinstance(op, OneOf):
        for inner in op.ops:
            yield from _leaves(inner)
    elif isinstance(op, RandomApply):
        yield from _leaves(op.op)
    else:
        yield op


def op_kind(op: Augmenter) -> str:
    """``"text"``, ``"table"`` or ``"image"``: what the ops of a pipeline work on (they must
    all agree)."""
    kinds = set()
    for leaf in _leaves(op):
        if isinstance(leaf, (_TextOp, EDA)):
            kinds.add("text")
        elif isinstance(leaf, (GaussianJitter, TabularMixUp)):
            kinds.add("table")
        else:
            kinds.add("image")
    if len(kinds) != 1:
        raise InvalidArgumentError(f"the ops mix {' and '.join(sorted(kinds))} operations; one pipeline "
                                   f"augments one kind of data")
    return kinds.pop()


def _single_eda(op: Augmenter) -> Augmenter:
    """EDA makes the copies itself: alone (or alone in a Compose) it is used as is."""
    if isinstance(op, Compose) and len(op.ops) == 1 and isinstance(op.ops[0], EDA):
        return op.ops[0]
    if not isinstance(op, EDA) and any(isinstance(leaf, EDA) for leaf in _leaves(op)):
        raise InvalidArgumentError("eda makes the augmented copies itself: use it alone (eda:0.05 with "
                                   "-n 16), or combine synonym, insert, swap and delete instead")
    return op


def _check_text_column(schema: pa.Schema, column: str) -> None:
    if column not in schema.names:
        raise SchemaError(f"no text column {column!r}; the columns are {schema.names} (choose one with "
                          f"--text-column / text_column=)")
    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise SchemaError(f"column {column!r} holds {kind}, not text; choose a string column")


def _text_copies(table: pa.Table, first_row: int, op: Augmenter, n: int, column: str,
                 seed: int) -> pa.Table:
    texts = table[column].to_pylist()
    ids = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
    if isinstance(op, EDA):
        out = op.with_copies(n).expand(TextBatch(texts, ids), seed=seed)
    else:
        out = augment_copies(op, TextBatch(texts, ids), n, seed=seed)
    rows = table.take(pa.array(np.repeat(np.arange(table.num_rows), n)))
    rows = rows.set_column(rows.schema.get_field_index(column), rows.schema.field(column),
                           pa.array(out.texts, type=rows.schema.field(column).type))
    return rows.append_column(COPY_COLUMN, pa.array(out.copies, type=pa.int64()))


def augment_rows(data: Any, op: Augmenter, n: int, *, text_column: str | None = None,
                 seed: int = 0, batch_rows: int = 4096,
                 on_progress: Callable[[int], None] | None = None) -> Iterator[pa.Table]:
    """``n`` augmented copies of every row of ``data``, as a stream of Arrow tables.

    Parameters
    ----------
    data : Dataset, pyarrow.Table or pandas.DataFrame
    op : Augmenter
        Text ops (need ``text_column``) or table ops (see the module docstring).
    n : int
        Copies per row (for :class:`EDA`, its ``n_aug`` is set to ``n``).
    text_column : str, optional
        The column the text ops change (default ``"text"``).
    seed : int, default 0
    batch_rows : int, default 4096
        Input rows per streamed batch (text ops; the result does not depend on it).
    on_progress : callable, optional
        Called with the number of input rows done after each batch.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"the number of copies must be a positive integer, got {n!r}")
    dataset = as_dataset(data, what="augment_rows")
    if COPY_COLUMN in dataset.columns:
        raise SchemaError(f"the input already has a column {COPY_COLUMN!r}, which the output uses for the "
                          f"copy number; rename it first")
    kind = op_kind(op)
    op = _single_eda(op)
    if kind == "image":
        raise InvalidArgumentError("image ops augment image folders (kiln augment IMAGES --ops ...); "
                                   "text ops are synonym, insert, swap, delete, eda; table ops are "
                                   "table_jitter, table_mixup")
    if kind == "text":
        column = text_column or "text"
        _check_text_column(dataset.arrow_schema, column)
        first = 0
        for batch in dataset.iter_batches(batch_rows):
            table = pa.Table.from_batches([batch])
            yield _text_copies(table, first, op, int(n), column, seed)
            first += table.num_rows
            if on_progress is not None:
                on_progress(table.num_rows)
        return
    table = dataset.to_arrow()
    for leaf in _leaves(op):
        if isinstance(leaf, GaussianJitter) and not hasattr(leaf, "spread_"):
            leaf.fit(table)
    yield table_copies(op, table, int(n), seed=seed)
    if on_progress is not None:
        on_progress(table.num_rows)

"""Streaming group counts: how many rows share each combination of some columns.

Re-identification risk and the generalisation search need only these counts, never the rows:
each table of rows is grouped on a worker thread (``pyarrow``'s hash ``group_by``, where a
null is a key of its own), the partial counts are merged by re-grouping with a sum whenever
they pile up, and the merged table is checked against the memory budget. Memory therefore
grows with the number of *distinct* combinations, not with the row count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import MemoryBudgetError, SchemaError
from datakiln.units import format_bytes, parse_bytes

COUNT = "__datakiln_count"
_MERGE_ROWS = 1_000_000  # re-group the partial counts when they exceed this many rows


def check_columns(columns: Sequence[str], dataset: Any, what: str) -> None:
    """Refuse column names the data lacks (naming them and the columns it has), and nested
    or binary columns (which have no equality classes to count)."""
    from datakiln.schema import refuse_nested

    available = dataset.columns
    missing = [c for c in columns if c not in available]
    if missing:
        raise SchemaError(f"the {what} {missing} are not columns of the data; it has {list(available)}")
    schema = dataset.arrow_schema
    refuse_nested(pa.schema([schema.field(c) for c in columns]), f"counting classes over the {what}",
                  "leave them out or flatten them into plain columns first")


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns decoded to their values (one type across batches)."""
    for i, column_type in enumerate(table.schema.types):
        if pa.types.is_dictionary(column_type):
            table = table.set_column(i, table.field(i).name, table.column(i).cast(column_type.value_type))
    return table


def _group(table: pa.Table, keys: Sequence[str], weight: str | None) -> pa.Table:
    keys = list(keys)
    if weight is None:
        grouped = table.select(keys).group_by(keys, use_threads=False).aggregate([([], "count_all")])
        grouped = grouped.select([*keys, "count_all"])
    else:
        grouped = table.group_by(keys, use_threads=False).aggregate([(weight, "sum")])
        grouped = grouped.select([*keys, f"{weight}_sum"])
    return grouped.rename_columns([*keys, COUNT])


def _merge(parts: list[pa.Table], keys: Sequence[str]) -> pa.Table:
    table = pa.concat_tables(parts, promote_options="permissive")
    return _group(table, keys, COUNT) if len(parts) > 1 else table


def group_counts(dataset: Any, key_sets: Sequence[Sequence[str]], *,
                 memory_budget: int | str | None = "1GB",
                 on_progress: Callable[[int], None] | None = None) -> list[pa.Table]:
    """Row counts per distinct combination of each key set, in one streaming pass.

    Parameters
    ----------
    dataset : Dataset
        The rows; read batch by batch.
    key_sets : list of list of str
        One list of column names per count table wanted.
    memory_budget : int or str, optional
        Bytes the merged counts may hold (default ``"1GB"``); ``None`` for no limit.
    on_progress : callable, optional
        Called with the number of rows of each table as it is counted.

    Returns
    -------
    list of pyarrow.Table
        Per key set: its key columns plus ``COUNT`` (int64), one row per combination.
    """
    budget = parse_bytes(memory_budget)
    columns = sorted({c for keys in key_sets for c in keys})

    def count(table: pa.Table) -> tuple[int, list[pa.Table]]:
        table = _plain(table.select(columns))
        return table.num_rows, [_group(table, keys, None) for keys in key_sets]

    parts: list[list[pa.Table]] = [[] for _ in key_sets]
    pending = [0] * len(key_sets)
    merged_rows = [0] * len(key_sets)
    for rows, grouped in dataset._tables(count):
        if on_progress is not None:
            on_progress(rows)
        for i, part in enumerate(grouped):
            parts[i].append(part)
            pending[i] += part.num_rows
            # merge when the partials outgrow both a floor and the last merge (doubling keeps
            # the total merge work proportional to the rows grouped, however many combinations)
            if pending[i] > max(_MERGE_ROWS, merged_rows[i]):
                parts[i] = [_merge(parts[i], key_sets[i])]
                merged_rows[i] = parts[i][0].num_rows
                pending[i] = 0
                _check_budget(parts, budget, key_sets)
    merged = []
    for keys, part in zip(key_sets, parts, strict=True):
        if not part:
            schema = _plain(dataset.arrow_schema.empty_table()).schema
            merged.append(pa.table({**{k: pa.array([], schema.field(k).type) for k in keys},
                                    COUNT: pa.array([], pa.int64())}))
        else:
            merged.append(_merge(part, keys))
    _check_budget([[m] for m in merged], budget, key_sets)
    return merged


def _check_budget(parts: list[list[pa.Table]], budget: int | None, key_sets: Sequence[Sequence[str]]) -> None:
    if budget is None:
        return
    held = sum(t.nbytes for tables in parts for t in tables)
    if held > budget:
        combos = max(sum(t.num_rows for t in tables) for tables in parts)
        raise MemoryBudgetError(
            f"the counts per combination of {list(key_sets[0])} need {format_bytes(held)} "
            f"(about {combos:,} distinct combinations) but the memory budget is "
            f"{format_bytes(budget)}; raise memory_budget, or use fewer or coarser "
            "quasi-identifiers (generalise a column first)")


def value_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array, bool]:
    """Integer codes of a column's values: ``(codes, distinct non-null values sorted, has_null)``.

    The codes follow the sorted order of the values (numbers by size, text by code point);
    a null gets the code ``len(values)`` (after every value).
    """
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = pc.unique(column.drop_null())
    values = values.take(pc.sort_indices(values))
    index = pc.index_in(column, value_set=values)
    has_null = column.null_count > 0
    codes = index.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, values, has_null


def combine_codes(codes: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """One int64 id per row from several code columns (mixed radix, re-numbered densely
    whenever the radix product would overflow), equal ids exactly for equal code tuples."""
    rows = len(codes[0]) if codes else 0
    key = np.zeros(rows, dtype=np.int64)
    span = 1
    for code, size in zip(codes, sizes, strict=True):
        size = max(int(size), 1)
        if span * size >= 2**62:
            uniq, key = np.unique(key, return_inverse=True)
            span = max(len(uniq), 1)
        key = key * size + code
        span *= size
    return key

"""The cleaning-step contract and helpers shared by the steps.

A step learns in ``fit(dataset)`` (streaming, or from a bounded sample) and changes one
table at a time in ``apply(table, report)``, tallying what it changed. Steps that keep
state across tables (duplicates) say ``row_wise = False`` and get a ``prepare`` pass over
the data they will clean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.clean.report import StepReport
from datakiln.dataset._sketches import RowSample, hash_values, mix64, row_key
from datakiln.dataset.dataset import Dataset

__all__ = ["Step", "count_true", "fill_scalar", "numeric_columns", "numeric_matrix", "row_hashes",
           "sample_table"]

_NULL_HASH = np.uint64(0x6A09E667F3BCC908)


class Step:
    """Base class of cleaning steps."""

    name = "step"
    row_wise = True

    def settings(self) -> dict[str, Any]:
        """The step's arguments, for the report."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def fit(self, dataset: Dataset, memory_budget: int | None) -> None:
        """Learn what ``apply`` needs (default: nothing)."""

    def prepare(self, dataset: Dataset, memory_budget: int | None) -> None:
        """A pass over the very data about to be cleaned (stateful steps only)."""

    def apply(self, table: pa.Table, report: StepReport) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


def numeric_columns(schema: pa.Schema) -> list[str]:
    """Integer, float and decimal columns."""
    return [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
            or pa.types.is_decimal(f.type)]


def row_hashes(table: pa.Table, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row over ``columns`` (nulls hash alike, position matters)."""
    combined = np.zeros(table.num_rows, dtype=np.uint64)
    for index, name in enumerate(columns):
        column = table[name].combine_chunks()
        hashes = np.full(len(column), _NULL_HASH, dtype=np.uint64)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        if valid.any() and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            encoded = pc.dictionary_encode(column.drop_null())  # hash each distinct text once
            hashes[valid] = hash_values(encoded.dictionary)[encoded.indices.to_numpy()]
        elif valid.any():
            hashes[valid] = hash_values(column)
        with np.errstate(over="ignore"):
            combined = mix64(combined ^ hashes ^ np.uint64(index * 0x9E3779B97F4A7C15 % 2**64))
    return combined


def sample_table(dataset: Dataset, columns: list[str], rows: int, seed: int,
                 memory_budget: int | None) -> pa.Table:
    """A uniform sample of at most ``rows`` rows of ``columns`` (one streaming pass), keyed by row
    index so it is the same however the data is partitioned (batches, blocks, Ray tasks)."""
    sample, first_row = RowSample(rows, key=row_key(seed, 0x636C65616E)), 0
    for table in dataset.select(columns)._tables(memory_budget=memory_budget):
        sample.add(table, first_row=first_row)
        first_row += table.num_rows
    return sample.table if sample.table is not None else dataset.select(columns).arrow_schema.empty_table()


def fill_scalar(value: Any, dtype: pa.DataType) -> pa.Scalar:
    """``value`` as a scalar of ``dtype`` (rounded for integers)."""
    if pa.types.is_integer(dtype) and isinstance(value, float):
        value = round(value)
    return pa.scalar(value).cast(dtype) if not isinstance(value, pa.Scalar) else value.cast(dtype)


def numeric_matrix(table: pa.Table, columns: list[str], nan: float | None = None) -> np.ndarray:
    """``columns`` as a float64 matrix (rows × columns) for scikit-learn models.

    Nulls, NaN and ±inf are all NaN here (models cannot use an infinite value), or ``nan``
    if given.
    """
    matrix = np.column_stack([np.asarray(pc.cast(table[c], pa.float64(), safe=False).to_numpy(
        zero_copy_only=False), dtype=np.float64) for c in columns])
    matrix[np.isinf(matrix)] = np.nan
    return matrix if nan is None else np.nan_to_num(matrix, nan=nan)


def count_true(mask: Any) -> int:
    """Number of true values in a boolean Arrow array (nulls count as false)."""
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)

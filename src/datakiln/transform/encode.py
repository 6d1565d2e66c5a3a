"""Reversible category encodings: ordinal codes and one-hot columns with an "other" bucket.

Categories are collected batch by batch (memory grows with the number of distinct values,
never with rows). Ordinal codes round-trip exactly, nulls included. One-hot keeps the
categories seen at least ``min_frequency`` times (and at most ``max_categories``); the
rest, and categories first seen after fitting, share one ``<column>=__other__`` column.
Inverting a row of the other bucket gives ``other_value`` (default null): a bucketed
category cannot be recovered, which is the point of bucketing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.transform.base import Transform, register, schema_of, type_from_string

__all__ = ["OneHotEncoder", "OrdinalEncoder"]


def _is_categorical(dtype: pa.DataType) -> bool:
    return (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
            or pa.types.is_dictionary(dtype) or pa.types.is_boolean(dtype))


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


class _Categories(Transform):
    """Collects each column's categories with their counts while fitting."""

    def fit(self, data: Any) -> Transform:
        schema = schema_of(data)
        self._categorical_names = [f.name for f in schema if _is_categorical(f.type)]
        self.types_ = {f.name: str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                       for f in schema}
        return super().fit(data)

    def _default_columns(self, available: Sequence[str]) -> list[str]:
        return [c for c in available if c in self._categorical_names]

    def _fit_start(self) -> None:
        self._counts: dict[str, Counter[Any]] = {c: Counter() for c in self.columns_}

    def _fit_batch(self, table: pa.Table) -> None:
        for name in self.columns_:
            summary = pc.value_counts(_plain(table[name]).drop_null())
            values = summary.field("values").to_pylist()
            self._counts[name].update(dict(zip(values, summary.field("counts").to_pylist())))

    def _category_array(self, name: str) -> pa.Array:
        return pa.array(self.categories_[name], type=type_from_string(self.types_[name]))


@register
class OrdinalEncoder(_Categories):
    """Categories to integer codes 0..k-1 (sorted order), nulls stay null.

    ``unknown="error"`` (default) rejects categories not seen when fitting; ``"null"``
    turns them into nulls.
    """

    _state: ClassVar[tuple[str, ...]] = ("types_", "categories_")

    def __init__(self, columns: Sequence[str] | None = None, *, unknown: str = "error") -> None:
        self.columns = columns
        self.unknown = unknown

    def _fit_end(self) -> None:
        if self.unknown not in ("error", "null"):
            raise InvalidArgumentError(f"unknown must be 'error' or 'null', got {self.unknown!r}")
        self.types_ = {c: self.types_[c] for c in self.columns_}
        self.categories_ = {c: sorted(counts) for c, counts in self._counts.items()}
        del self._counts

    def _forward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            values = _plain(table[name])
            codes = pc.index_in(values, value_set=self._category_array(name)).cast(pa.int32())
            unseen = pc.and_(pc.is_null(codes), pc.is_valid(values))
            if self.unknown == "error" and pc.any(unseen).as_py():
                example = values.filter(unseen)[0].as_py()
                raise SchemaError(f"column {name!r}: category {example!r} was not seen when "
                                  "fitting; refit, or use OrdinalEncoder(unknown='null')")
            table = table.set_column(table.schema.get_field_index(name), name, codes)
        return table

    def _backward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            if name in table.column_names:
                codes = pc.cast(table[name], pa.int32())
                restored = pc.take(self._category_array(name), codes)
                table = table.set_column(table.schema.get_field_index(name), name, restored)
        return table


@register
class OneHotEncoder(_Categories):
    """One ``<column>=<category>`` 0/1 column per kept category, plus ``<column>=__other__``.

    Parameters
    ----------
    min_frequency : int or float, optional
        Keep a category seen at least this many times (an int) or in at least this share
        of the non-null rows (a float in (0, 1)); the rest go to the other bucket.
    max_categories : int, optional
        Keep at most this many (the most frequent) categories per column.
    other_value : optional
        What ``inverse_transform`` returns for the other bucket (default null).
    """

    _state: ClassVar[tuple[str, ...]] = ("types_", "categories_", "outputs_")
    OTHER = "__other__"

    def __init__(self, columns: Sequence[str] | None = None, *,
                 min_frequency: int | float | None = None, max_categories: int | None = None,
                 other_value: Any = None) -> None:
        self.columns = columns
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.other_value = other_value

    def _fit_end(self) -> None:
        self.types_ = {c: self.types_[c] for c in self.columns_}
        self.categories_, self.outputs_ = {}, {}
        for name, counts in self._counts.items():
            total = sum(counts.values())
            floor = self.min_frequency or 0
            if isinstance(floor, float) and 0 < floor < 1:
                floor = floor * total
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            kept = [value for value, count in ranked if count >= floor]
            if self.max_categories is not None:
                kept = kept[: self.max_categories]
            self.categories_[name] = sorted(kept, key=str)
            self.outputs_[name] = [f"{name}={_label(v)}" for v in self.categories_[name]] + [
                f"{name}={self.OTHER}"]
        del self._counts

    def _forward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            values = _plain(table[name])
            codes = pc.index_in(values, value_set=self._category_array(name)).to_numpy(
                zero_copy_only=False)
            valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
            known = ~np.isnan(codes.astype(np.float64))
            position = table.schema.get_field_index(name)
            table = table.remove_column(position)
            clash = [o for o in self.outputs_[name] if o in table.column_names]
            if clash:
                raise SchemaError(f"one-hot columns {clash} already exist in the table")
            for index, output in enumerate(self.outputs_[name][:-1]):
                flag = known & (np.nan_to_num(codes.astype(np.float64), nan=-1) == index)
                table = table.add_column(position + index, output, pa.array(flag.astype(np.uint8)))
            other = (valid & ~known).astype(np.uint8)
            table = table.add_column(position + len(self.outputs_[name]) - 1,
                                     self.outputs_[name][-1], pa.array(other))
        return table

    def _backward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            outputs = self.outputs_[name]
            if not all(o in table.column_names for o in outputs):
                continue
            matrix = np.column_stack([np.asarray(table[o].to_numpy(), dtype=np.float64)
                                      for o in outputs])
            choice = matrix.argmax(axis=1)
            empty = matrix.max(axis=1) <= 0
            other = (choice == len(outputs) - 1) & ~empty
            categories = self._category_array(name)
            dtype = categories.type
            picked = pc.take(categories, pa.array(np.where(empty | other, 0, choice),
                                                  pa.int64())) if len(categories) else \
                pa.nulls(len(choice), dtype)
            fill = pa.scalar(self.other_value, dtype) if self.other_value is not None \
                else pa.scalar(None, dtype)
            restored = pc.if_else(pa.array(other), fill, picked)
            restored = pc.if_else(pa.array(empty), pa.scalar(None, dtype), restored)
            position = table.schema.get_field_index(outputs[0])
            table = table.drop_columns(outputs).add_column(position, name, restored)
        return table


def _label(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)

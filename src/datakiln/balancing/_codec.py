"""Rows ↔ the numeric matrix imbalanced-learn works on, keeping every column's type.

Categories, booleans and text go through datakiln's :class:`~datakiln.transform.OrdinalEncoder`
(a null becomes one more code); integers, decimals and datetimes become float64 and come
back rounded to their type and clipped to the range seen in fitting (SMOTE interpolates,
so it never leaves that range, but a float must still become an integer: no 2.37
children); floats come back as they are. Numeric nulls cannot be interpolated, so they
are refused with a message that names the column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.schema import numeric_values as ticks
from datakiln.transform.encode import OrdinalEncoder

__all__ = ["FeatureCodec", "bytes_per_row"]


def _is_number(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            or pa.types.is_temporal(dtype))


def bytes_per_row(dataset: Any) -> float:
    """Estimated memory of one row while balancing: its Arrow bytes (from the first 1,000 rows)
    plus a float64 per column in the sampler's matrix."""
    head = dataset.head(1000)
    return head.nbytes / max(head.num_rows, 1) + 8 * head.num_columns


class FeatureCodec:
    """Fitted on a Dataset (streamed): which columns are categorical, category codes, ranges."""

    def __init__(self, schema: pa.Schema, target: str) -> None:
        if target not in schema.names:
            raise SchemaError(f"target {target!r} is not a column; the columns are {schema.names}")
        self.schema = schema
        self.target = target
        self.features = [n for n in schema.names if n != target]
        if not self.features:
            raise InvalidArgumentError("balancing needs at least one feature column besides the target")
        self.categorical = [n for n in self.features if not _is_number(schema.field(n).type)]
        self.low: dict[str, float] = {}
        self.high: dict[str, float] = {}

    def fit(self, dataset: Any, memory_budget: int | None = None) -> FeatureCodec:
        """Learn categories (features and target) and numeric ranges in one streaming pass."""
        self._refuse_null_labels(dataset, memory_budget)
        self.labels_encoder = OrdinalEncoder([self.target]).fit(dataset.select([self.target]))
        self.encoder = OrdinalEncoder(self.categorical).fit(dataset.select(self.categorical)) \
            if self.categorical else None
        numeric = [n for n in self.features if n not in self.categorical]
        for table in dataset.select(numeric)._tables(memory_budget=memory_budget) if numeric else []:
            for name in numeric:
                x = ticks(table[name])
                if np.isnan(x).any():
                    raise InvalidArgumentError(
                        f"column {name!r} has missing values, which SMOTE and the other samplers cannot "
                        f"use; impute them first (datakiln.clean.Impute) or drop the column")
                if x.size:
                    self.low[name] = min(float(x.min()), self.low.get(name, np.inf))
                    self.high[name] = max(float(x.max()), self.high.get(name, -np.inf))
        return self

    def _refuse_null_labels(self, dataset: Any, memory_budget: int | None) -> None:
        """Rows without a label are not a class: refuse them (streamed, the target column only)."""
        nulls = sum(t[self.target].null_count
                    for t in dataset.select([self.target])._tables(memory_budget=memory_budget))
        if nulls:
            raise InvalidArgumentError(
                f"the target column {self.target!r} has {nulls:,} null labels; rows without a label are "
                f"not a class and cannot be balanced: drop or fill them first (drop: "
                f"ds.filter(pc.field({self.target!r}).is_valid()); fill: an impute step in a kiln clean "
                f"config, or datakiln.clean.Impute)")

    @property
    def classes(self) -> list[Any]:
        """The target's classes in code order."""
        return list(self.labels_encoder.categories_[self.target])

    def strategy(self, sampling_strategy: Any) -> Any:
        """``sampling_strategy`` with the target's classes turned into the codes samplers see.

        A dict (class -> rows) and a list (classes to clean) name classes by their values;
        ``None`` names the null class. Strings, floats and callables pass through unchanged.
        """
        if not isinstance(sampling_strategy, (dict, list, tuple)):
            return sampling_strategy
        codes = {label: code for code, label in enumerate(self.classes)}
        codes.setdefault(None, len(self.classes))

        def code(label: Any) -> int:
            try:
                return codes[label.item() if isinstance(label, np.generic) else label]
            except (KeyError, TypeError):
                raise InvalidArgumentError(
                    f"sampling_strategy names the class {label!r}, which the target {self.target!r} does "
                    f"not have; its classes are {self.classes[:20]}") from None

        if isinstance(sampling_strategy, dict):
            return {code(label): rows for label, rows in sampling_strategy.items()}
        return [code(label) for label in sampling_strategy]

    def labels(self, table: pa.Table) -> np.ndarray:
        """Target codes (the null class, if any, is the last code)."""
        codes = self.labels_encoder.transform(table.select([self.target]))[self.target]
        filled = pc.fill_null(codes, len(self.classes))
        return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64)

    def all_labels(self, dataset: Any, memory_budget: int | None = None) -> np.ndarray:
        """Target codes of every row of ``dataset``, streamed (8 bytes a row)."""
        parts = [self.labels(t) for t in dataset.select([self.target])._tables(memory_budget=memory_budget)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def encode(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(feature matrix float64, target codes) of ``table``."""
        coded = self.encoder.transform(table.select(self.categorical)) if self.encoder else None
        columns = []
        for name in self.features:
            if name in self.categorical:
                k = len(self.encoder.categories_[name])
                columns.append(np.asarray(pc.fill_null(coded[name], k).to_numpy(zero_copy_only=False),
                                          dtype=np.float64))
            else:
                x = ticks(table[name])
                if np.isnan(x).any():
                    raise InvalidArgumentError(f"column {name!r} has missing values; impute them first")
                columns.append(x)
        return np.column_stack(columns), self.labels(table)

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([n in self.categorical for n in self.features])

    def decode(self, x: np.ndarray, y: np.ndarray) -> pa.Table:
        """A table with the original schema from a feature matrix and target codes."""
        codes: dict[str, pa.Array] = {}
        x = np.ascontiguousarray(x.T)  # one copy; each column is then contiguous
        for j, name in enumerate(self.features):
            if name in self.categorical:
                k = len(self.encoder.categories_[name])
                code = np.round(x[j]).astype(np.int32)
                codes[name] = pa.array(code, mask=code >= k)
        k = len(self.classes)
        labels = pa.table({self.target: pa.array(y.astype(np.int32), mask=y >= k)})
        restored = self.encoder.inverse_transform(pa.table(codes)) if self.encoder else None
        columns = {}
        for j, name in enumerate(self.features):
            columns[name] = restored[name] if name in self.categorical else self._number(name, x[j])
        columns[self.target] = self.labels_encoder.inverse_transform(labels)[self.target]
        return pa.table({n: columns[n] for n in self.schema.names}).cast(self.schema)

    def _number(self, name: str, x: np.ndarray) -> pa.Array:
        dtype = self.schema.field(name).type
        if pa.types.is_floating(dtype):
            return pa.array(x).cast(dtype)
        if pa.types.is_decimal(dtype):
            return pc.cast(pc.round(pa.array(x), ndigits=dtype.scale), dtype)
        low, high = self.low.get(name, -np.inf), self.high.get(name, np.inf)
        whole = np.clip(np.round(x), low, high).astype(np.int64)
        if pa.types.is_temporal(dtype):
            storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
            return pa.array(whole).cast(storage).cast(dtype)
        return pa.array(whole).cast(dtype)

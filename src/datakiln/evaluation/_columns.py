"""Which columns an evaluation compares, and how rows become numbers for models and distances.

Every column gets a *role*: ``continuous`` (numbers, integers, datetimes: compared by
their distribution function), ``discrete`` (categories and booleans: compared by their
frequencies) or ``None`` (identifiers, PII and free text: skipped, as SDMetrics skips
them). Roles come from the real data's inferred kinds; ``metadata`` overrides them with
datakiln kinds or SDV's sdtypes (``numerical``, ``categorical``, ``boolean``,
``datetime``, ``id``, ``pii``).

:class:`RowEncoder` turns sampled rows into (a) a matrix for scikit-learn's
HistGradientBoosting (category codes flagged as categorical, nulls as NaN) and (b) an
embedding whose Euclidean distance is a Gower-like distance (numbers scaled to the real
range, a category mismatch counts 1, a null is its own value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset.dataset import Dataset
from datakiln.errors import InvalidArgumentError, SchemaError, SchemaMismatchError
from datakiln.schema import numeric_values as numbers

__all__ = ["ColumnRoles", "RowEncoder", "column_roles", "fit_ready", "numbers"]

_CONTINUOUS_KINDS = {"numeric", "integer", "datetime", "numerical"}
_DISCRETE_KINDS = {"categorical", "boolean", "ordinal"}
_SKIPPED_KINDS = {"identifier", "id", "pii", "text"}
MAX_CODES = 250  # HistGradientBoosting's limit for a categorical feature is 255 bins


@dataclass(frozen=True)
class ColumnRoles:
    """``{column: "continuous" | "discrete"}`` for compared columns, plus the skipped ones."""

    roles: dict[str, str]
    skipped: dict[str, str]

    @property
    def continuous(self) -> list[str]:
        return [n for n, r in self.roles.items() if r == "continuous"]

    @property
    def discrete(self) -> list[str]:
        return [n for n, r in self.roles.items() if r == "discrete"]

    @property
    def names(self) -> list[str]:
        return list(self.roles)


def column_roles(real: Dataset, others: list[tuple[str, Dataset]],
                 metadata: Mapping[str, str] | None = None) -> ColumnRoles:
    """Roles of the real columns; every other table must have the same column names, except
    that free text, identifiers and PII may be left out (``text="drop"``, ``pii="drop"``):
    they are never compared, only checked for copies where present."""
    metadata = dict(metadata or {})
    unknown = sorted(set(metadata) - set(real.columns))
    if unknown:
        raise InvalidArgumentError(f"metadata names columns the real data does not have: {unknown}")
    kinds = real.schema
    for label, other in others:
        missing = [n for n in real.columns if n not in other.columns
                   and str(metadata.get(n, kinds[n].kind)) not in _SKIPPED_KINDS]
        if missing:
            raise SchemaError(f"the {label} data lacks the real columns {missing}; evaluate compares "
                              f"tables with the same columns (it has {other.columns})")
    roles, skipped = {}, {}
    for field in real.arrow_schema:
        kind = str(metadata.get(field.name, kinds[field.name].kind))
        if kind in _CONTINUOUS_KINDS and _is_numeric_type(field.type):
            roles[field.name] = "continuous"
        elif kind in _DISCRETE_KINDS or (kind in _CONTINUOUS_KINDS and not _is_numeric_type(field.type)):
            roles[field.name] = "discrete"
        elif kind in _SKIPPED_KINDS:
            skipped[field.name] = kind
        else:
            raise InvalidArgumentError(f"column {field.name!r}: unknown kind {kind!r} in metadata; use "
                                       f"numeric, integer, datetime, categorical, boolean, identifier, "
                                       f"pii or text")
    for label, other in others:  # a number column compared with text cannot be scored
        for name in (n for n, role in roles.items() if role == "continuous"):
            dtype = other.arrow_schema.field(name).type
            dtype = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
            if not (_is_numeric_type(dtype) or pa.types.is_null(dtype)):
                raise SchemaMismatchError(
                    f"column {name!r} holds {real.arrow_schema.field(name).type} values in the real data "
                    f"but {dtype} in the {label} data; evaluate compares columns of the same type: check "
                    f"that the files line up, or convert the column")
    return ColumnRoles(roles, skipped)


def _is_numeric_type(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            or pa.types.is_temporal(dtype))


def plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A dictionary-encoded column decoded to its value type; others unchanged."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


class RowEncoder:
    """Encodes row samples consistently: codes for models, an embedding for distances.

    Fitted on the real sample: the most frequent ``MAX_CODES`` categories of each discrete
    column get codes (the rest share one), continuous columns are scaled by the real range.
    """

    def __init__(self, roles: ColumnRoles, real: pa.Table, columns: list[str] | None = None) -> None:
        self.columns = [c for c in (columns or roles.names)]
        self.roles = {c: roles.roles[c] for c in self.columns}
        self.vocab: dict[str, pa.Array] = {}
        self.scale: dict[str, tuple[float, float]] = {}
        for name in self.columns:
            if self.roles[name] == "discrete":
                counts = pc.value_counts(plain(real[name]).drop_null())
                order = np.argsort(-np.asarray(counts.field("counts")), kind="stable")[:MAX_CODES]
                self.vocab[name] = counts.field("values").take(pa.array(order))
            else:
                x = numbers(real[name])
                x = x[np.isfinite(x)]
                low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
                self.scale[name] = (low, high - low if high > low else 1.0)

    def codes(self, table: pa.Table, name: str) -> np.ndarray:
        """Category codes of a discrete column as float: unknown/rare → the shared code, null → NaN."""
        column = plain(table[name])
        vocab = self.vocab[name]
        index = pc.index_in(column, value_set=vocab.cast(column.type)).to_numpy(zero_copy_only=False)
        index = np.asarray(index, dtype=np.float64)
        missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        index = np.where(np.isnan(index), float(len(vocab)), index)
        index[missing] = np.nan
        return index

    def model_matrix(self, table: pa.Table, exclude: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        """(float matrix, boolean mask of categorical columns) for HistGradientBoosting."""
        names = [c for c in self.columns if c not in exclude]
        if not names:
            raise InvalidArgumentError("no columns are left to learn from")
        matrix = np.column_stack([self.codes(table, c) if self.roles[c] == "discrete"
                                  else self._finite(table, c) for c in names])
        return matrix, np.array([self.roles[c] == "discrete" for c in names])

    def _finite(self, table: pa.Table, name: str) -> np.ndarray:
        """A continuous column's numbers with ±inf placed just past the real range.

        HistGradientBoosting bins features by quantiles, which turn ±inf into NaN thresholds
        (and numpy RuntimeWarnings on the user's terminal); past the range they stay apart
        from every finite value, the same for real and synthetic tables. NaN stays missing.
        """
        raw = numbers(table[name])
        low, width = self.scale[name]
        return np.where(np.isposinf(raw), low + 2.0 * width + 1.0,
                        np.where(np.isneginf(raw), low - width - 1.0, raw))

    def embedding(self, table: pa.Table) -> np.ndarray:
        """Rows in a space where Euclidean distance is Gower-like (see the module docstring).

        A continuous value is its scaled number plus a one-hot of its class (finite, null,
        NaN, +inf, -inf) scaled so that two different classes are 1 apart, as a category
        mismatch is; a non-finite value's number is 0.
        """
        parts: list[np.ndarray] = []
        for name in self.columns:
            if self.roles[name] == "discrete":
                codes = self.codes(table, name)
                codes = np.where(np.isnan(codes), len(self.vocab[name]) + 1, codes).astype(np.int64)
                onehot = np.zeros((len(codes), len(self.vocab[name]) + 2), dtype=np.float32)
                onehot[np.arange(len(codes)), codes] = np.sqrt(0.5)  # a mismatch adds 1 to d²
                parts.append(onehot)
            else:
                low, width = self.scale[name]
                raw = numbers(table[name])
                null = np.asarray(table[name].is_null().to_numpy(zero_copy_only=False), dtype=bool)
                finite = np.isfinite(raw)
                state = np.select([finite, null, np.isnan(raw), raw > 0], [0, 1, 2, 3], 4)
                onehot = np.zeros((len(raw), 5), dtype=np.float32)
                onehot[np.arange(len(raw)), state] = np.sqrt(0.5)
                x = np.where(finite, (raw - low) / width, 0.0)
                parts.append(np.column_stack([x, onehot]).astype(np.float32))
        return np.hstack(parts) if parts else np.zeros((table.num_rows, 0), dtype=np.float32)


def fit_ready(x: np.ndarray) -> np.ndarray:
    """A model matrix scikit-learn can fit: columns without any present value become 0.

    (HistGradientBoosting cannot bin a feature that is missing in every row; a constant
    carries the same lack of information.)
    """
    empty = np.isnan(x).all(axis=0) if len(x) else np.zeros(x.shape[1], dtype=bool)
    if not empty.any():
        return x
    x = x.copy()
    x[:, empty] = 0.0
    return x


def jsonable(value: Any) -> Any:
    """Plain JSON data: NumPy scalars to Python, NaN/inf to None, dates to ISO text, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value

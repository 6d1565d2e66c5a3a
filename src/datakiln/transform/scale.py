"""Reversible numeric scaling: standard, min-max (to [0, 1], [-1, 1] or any range), robust.

Statistics are streamed: mean and variance merge batch by batch (Chan et al.), min/max
too; the robust scaler's median and interquartile range come from a uniform row sample
(exact while the data has no more rows than ``sample_rows``). Scaled columns are float64;
``inverse_transform`` restores the original type: integers are rounded back exactly
(while |x| < 2**53), floats agree to the last few bits. Integers past 2**53 (nanosecond
timestamps stored as ints, large identifiers) are rounded to the nearest float64 on the way
in, as :func:`datakiln.schema.numeric_values` does everywhere, and come back within a few
units in the last place: ``|back - x| <= 2**-50 * |x|`` (under 2 µs for today's
nanosecond ticks) instead of being refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.dataset._sketches import Moments, RowSample
from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.schema import numeric_values
from datakiln.transform.base import Transform, register, schema_of, type_from_string

__all__ = ["MinMaxScaler", "RobustScaler", "StandardScaler"]


def _is_numeric(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


def _floats(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``column`` as a float64 Arrow array, nulls kept as nulls (NaN stays NaN).

    The one conversion every scaler uses: :func:`datakiln.schema.numeric_values` rounds
    integers past 2**53 to the nearest float64 where Arrow's safe cast would refuse them.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_float64(column.type):
        return column
    mask = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
    return pa.array(numeric_values(column), type=pa.float64(), mask=mask)


class _Scaler(Transform):
    """Shared by the scalers: ``(x - center) / scale`` per column, and back."""

    _state: ClassVar[tuple[str, ...]] = ("types_", "center_", "scale_")

    def _default_columns(self, available: Sequence[str]) -> list[str]:
        return [c for c in available if c in self._numeric_names]

    def fit(self, data: Any) -> Transform:
        schema = schema_of(data)
        self._numeric_names = [f.name for f in schema if _is_numeric(f.type)]
        bad = [c for c in (self.columns or []) if c in schema.names
               and not _is_numeric(schema.field(c).type)]
        if bad:
            raise SchemaError(f"{type(self).__name__} scales numbers, but {bad} are "
                              f"{[str(schema.field(c).type) for c in bad]}; encode them first")
        self.types_ = {f.name: str(f.type) for f in schema}
        return super().fit(data)

    def _fit_end(self) -> None:
        self.types_ = {c: self.types_[c] for c in self.columns_}
        self.scale_ = {c: (s if s and np.isfinite(s) and s != 0 else 1.0)
                       for c, s in self.scale_.items()}

    def _forward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            values = _floats(table[name])
            scaled = pc.divide(pc.subtract(values, self.center_[name]), self.scale_[name])
            table = table.set_column(table.schema.get_field_index(name), name, scaled)
        return table

    def _backward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            if name not in table.column_names:
                continue
            values = pc.add(pc.multiply(_floats(table[name]), self.scale_[name]),
                            self.center_[name])
            table = table.set_column(table.schema.get_field_index(name), name,
                                     _restore(values, type_from_string(self.types_[name]), name))
        return table


def _restore(values: pa.ChunkedArray, dtype: pa.DataType, name: str) -> pa.ChunkedArray:
    """Cast float64 back to the original type, rounding for integers and decimals."""
    if pa.types.is_integer(dtype):
        rounded = pc.round(values)
        try:
            return pc.cast(rounded, dtype)
        except pa.ArrowInvalid as exc:
            raise SchemaError(f"column {name!r}: values out of range for {dtype} after "
                              f"inverse scaling ({exc})") from exc
    if pa.types.is_decimal(dtype):
        return pc.cast(pc.round(values, ndigits=dtype.scale), dtype)
    return pc.cast(values, dtype)


@register
class StandardScaler(_Scaler):
    """Centre on the mean and divide by the standard deviation (population, ``ddof=0``).

    >>> StandardScaler(columns=["age"]).fit(table).transform(table)  # doctest: +SKIP
    """

    def __init__(self, columns: Sequence[str] | None = None, *, with_mean: bool = True,
                 with_std: bool = True) -> None:
        self.columns = columns
        self.with_mean = with_mean
        self.with_std = with_std

    def _fit_start(self) -> None:
        self._moments = {c: Moments() for c in self.columns_}

    def _fit_batch(self, table: pa.Table) -> None:
        for name in self.columns_:
            self._moments[name].merge(Moments.of_array(_floats(table[name])))

    def _fit_end(self) -> None:
        self.center_ = {c: m.mean if self.with_mean and m.n else 0.0 for c, m in self._moments.items()}
        self.scale_ = {c: float(np.sqrt(m.m2 / m.n)) if self.with_std and m.n else 1.0
                       for c, m in self._moments.items()}
        del self._moments
        super()._fit_end()


@register
class MinMaxScaler(_Scaler):
    """Map each column's [min, max] onto ``feature_range`` (default (0, 1); (-1, 1) for tanh)."""

    def __init__(self, columns: Sequence[str] | None = None, *,
                 feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.columns = columns
        self.feature_range = tuple(feature_range)  # JSON gives a list back

    def _fit_start(self) -> None:
        low, high = self.feature_range
        if not low < high:
            raise InvalidArgumentError(f"feature_range must be (low, high) with low < high, "
                                       f"got {self.feature_range}")
        self._extremes = {c: [np.inf, -np.inf] for c in self.columns_}

    def _fit_batch(self, table: pa.Table) -> None:
        for name in self.columns_:
            extremes = pc.min_max(_floats(table[name]))
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            if low is not None:
                seen = self._extremes[name]
                seen[0], seen[1] = min(seen[0], low), max(seen[1], high)

    def _fit_end(self) -> None:
        low, high = self.feature_range
        width = high - low
        self.scale_, self.center_ = {}, {}
        for name, (lo, hi) in self._extremes.items():
            if not np.isfinite(lo):
                lo, hi = 0.0, 1.0
            scale = (hi - lo) / width if hi > lo else 1.0
            self.scale_[name] = scale
            self.center_[name] = lo - low * scale  # (x - center) / scale maps lo -> low
        del self._extremes
        super()._fit_end()


@register
class RobustScaler(_Scaler):
    """Centre on the median and divide by the interquartile range (outlier-resistant).

    The quartiles come from a uniform sample of ``sample_rows`` rows (seeded), exact when
    the data is no larger.
    """

    def __init__(self, columns: Sequence[str] | None = None, *, sample_rows: int = 100_000,
                 seed: int = 0) -> None:
        self.columns = columns
        self.sample_rows = sample_rows
        self.seed = seed

    def _fit_start(self) -> None:
        self._sample = RowSample(self.sample_rows)
        self._rng = np.random.default_rng(self.seed)

    def _fit_batch(self, table: pa.Table) -> None:
        self._sample.add(table, self._rng)

    def _fit_end(self) -> None:
        self.center_, self.scale_ = {}, {}
        for name in self.columns_:
            values = (_floats(self._sample.table[name]).drop_null().to_numpy()
                      if self._sample.table is not None else np.zeros(0))
            if values.size:
                q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
                self.center_[name], self.scale_[name] = float(median), float(q3 - q1)
            else:
                self.center_[name], self.scale_[name] = 0.0, 1.0
        del self._sample, self._rng
        super()._fit_end()

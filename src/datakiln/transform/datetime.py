"""Datetimes and dates to numbers (seconds since 1970 by default) and back, time zone kept.

Values become float64 in ``unit`` (``"s"``, ``"ms"``, ``"us"``, ``"ns"`` or ``"D"`` days);
the inverse rounds to the column's own tick and restores its type and zone. The round
trip is exact while the float carries the tick: second, millisecond and microsecond
timestamps within thousands of years of 1970, and every date. Nanosecond ticks of today
(about 1.7e18, past float64's 2**53) come back within a few hundred nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError
from datakiln.transform.base import Transform, register, schema_of, type_from_string

__all__ = ["DatetimeEncoder"]

_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "D": 86400.0}


def _tick_seconds(dtype: pa.DataType) -> float:
    if pa.types.is_date32(dtype):
        return 86400.0
    if pa.types.is_date64(dtype):
        return 1e-3
    return _UNIT_SECONDS[dtype.unit]


def _ticks(values: pa.ChunkedArray) -> pa.ChunkedArray:
    storage = pa.int32() if values.type.bit_width == 32 else pa.int64()
    return pc.cast(pc.cast(values, storage), pa.int64())


@register
class DatetimeEncoder(Transform):
    """Timestamp and date columns to float64 counts of ``unit`` since 1970-01-01 (UTC)."""

    _state: ClassVar[tuple[str, ...]] = ("types_",)

    def __init__(self, columns: Sequence[str] | None = None, *, unit: str = "s") -> None:
        self.columns = columns
        self.unit = unit

    def fit(self, data: Any) -> Transform:
        if self.unit not in _UNIT_SECONDS:
            raise InvalidArgumentError(f"unit must be one of {sorted(_UNIT_SECONDS)}, got {self.unit!r}")
        schema = schema_of(data)
        self._temporal = [f.name for f in schema if pa.types.is_timestamp(f.type)
                          or pa.types.is_date(f.type)]
        bad = [c for c in (self.columns or []) if c in schema.names and c not in self._temporal]
        if bad:
            raise SchemaError(f"DatetimeEncoder needs timestamp or date columns; {bad} are not "
                              "(parse text dates first, e.g. with the cleaner's type repair)")
        self.types_ = {f.name: str(f.type) for f in schema}
        return super().fit(data)

    def _default_columns(self, available: Sequence[str]) -> list[str]:
        return [c for c in available if c in self._temporal]

    def _fit_batch(self, table: pa.Table) -> None:
        """Nothing to learn beyond the types."""

    def _fit_end(self) -> None:
        self.types_ = {c: self.types_[c] for c in self.columns_}

    def _forward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            dtype = type_from_string(self.types_[name])
            factor = _tick_seconds(dtype) / _UNIT_SECONDS[self.unit]
            # unsafe: nanosecond ticks past 2**53 round to the nearest float instead of failing
            numbers = pc.multiply(pc.cast(_ticks(table[name]), pa.float64(), safe=False), factor)
            table = table.set_column(table.schema.get_field_index(name), name, numbers)
        return table

    def _backward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            if name not in table.column_names:
                continue
            dtype = type_from_string(self.types_[name])
            factor = _UNIT_SECONDS[self.unit] / _tick_seconds(dtype)
            ticks = pc.cast(pc.round(pc.multiply(pc.cast(table[name], pa.float64()), factor)),
                            pa.int64())
            storage = pa.int32() if dtype.bit_width == 32 else pa.int64()
            restored = pc.cast(pc.cast(ticks, storage), dtype)
            table = table.set_column(table.schema.get_field_index(name), name, restored)
        return table

"""Missing-value indicators: a ``<column>__missing`` boolean per column that had nulls.

Imputers fill values in place; the indicator keeps where the nulls were, so
``inverse_transform`` can put them back exactly after any later change to the values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import SchemaError
from datakiln.transform.base import Transform, register

__all__ = ["MissingIndicator"]

SUFFIX = "__missing"


@register
class MissingIndicator(Transform):
    """Add ``<column>__missing`` (bool) for ``columns`` (default: those with nulls in fit)."""

    _state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.columns = columns

    def _default_columns(self, available: Sequence[str]) -> list[str]:
        return list(available)

    def _fit_start(self) -> None:
        self._with_nulls: set[str] = set()

    def _fit_batch(self, table: pa.Table) -> None:
        self._with_nulls |= {c for c in self.columns_ if table[c].null_count}

    def _fit_end(self) -> None:
        if self.columns is None:
            self.columns_ = [c for c in self.columns_ if c in self._with_nulls]
        del self._with_nulls

    def _forward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            output = name + SUFFIX
            if output in table.column_names:
                raise SchemaError(f"column {output!r} already exists; rename it first")
            table = table.append_column(output, pc.is_null(table[name]))
        return table

    def _backward(self, table: pa.Table) -> pa.Table:
        for name in self.columns_:
            output = name + SUFFIX
            if output not in table.column_names:
                continue
            if name in table.column_names:
                column = table[name]
                restored = pc.if_else(table[output], pa.scalar(None, column.type), column)
                table = table.set_column(table.schema.get_field_index(name), name, restored)
            table = table.drop_columns([output])
        return table

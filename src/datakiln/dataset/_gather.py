"""Random-row gathers from a (possibly chunked, memory-mapped) table, chunk by chunk.

Arrow's ``take`` on a chunked column concatenates the chunks first (a copy of the whole
column per batch), so the loader groups rows by chunk and gathers from each chunk's own
buffer: NumPy fancy indexing on zero-copy views for numbers without nulls, category
codes computed once, Arrow ``take`` on single chunks for the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Gather"]


class Gather:
    """Random-row gathers from a (possibly chunked, memory-mapped) table, chunk by chunk.

    Arrow's ``take`` on a chunked column concatenates the chunks first (a copy of the whole
    column per batch), so rows are grouped by chunk and gathered from each chunk's own
    buffer: NumPy fancy indexing on zero-copy views for numbers without nulls, category
    codes computed once, Arrow ``take`` on single chunks for the rest.
    """

    def __init__(self, table: pa.Table, categories: dict[str, list[Any]], *,
                 contiguous: bool = False) -> None:
        if contiguous:  # fits the budget: one buffer per column, one gather per batch
            table = table.combine_chunks()
        self.table = table
        self.names = table.column_names
        first = table.column(0) if table.num_columns else pa.chunked_array([], pa.null())
        lengths = [len(chunk) for chunk in first.chunks]
        self.starts = np.cumsum([0, *lengths])[:-1].astype(np.int64)
        self.views: dict[str, list[np.ndarray]] = {}
        self._codes: set[str] = set()
        for name in self.names:
            column = table[name]
            dtype = column.type
            if name in categories:
                lookup = pa.array(categories[name], type=pa.string())
                self.views[name] = [  # int32 codes: 4 bytes a row, computed once
                    pc.fill_null(pc.index_in(chunk.cast(dtype.value_type) if pa.types.is_dictionary(dtype)
                                             else chunk, value_set=lookup), -1).to_numpy()
                    for chunk in column.chunks]
                self._codes.add(name)
            elif column.null_count == 0 and (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
                                             or pa.types.is_temporal(dtype) or pa.types.is_boolean(dtype)):
                self.views[name] = [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]

    def _groups(self, indices: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
        chunk_of = np.searchsorted(self.starts, indices, side="right") - 1
        order = np.argsort(chunk_of, kind="stable")
        ordered = chunk_of[order]
        cuts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1, len(order)]
        groups = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                chunk = int(ordered[a])
                places = order[a:b]
                groups.append((chunk, places, indices[places] - self.starts[chunk]))
        return order, groups

    def _arrow_column(self, name: str, order: np.ndarray, groups: list[Any], n: int) -> pa.Array:
        chunks = self.table[name].chunks
        pieces = [chunks[chunk].take(pa.array(local)) for chunk, _, local in groups]
        joined = pa.concat_arrays(pieces) if pieces else pa.array([], self.table[name].type)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        return joined.take(pa.array(inverse))

    def arrays(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """``{column: NumPy array}`` of the rows at ``indices``, in that order."""
        n = len(indices)
        order, groups = self._groups(indices)
        result = {}
        for name in self.names:
            views = self.views.get(name)
            if views is not None:
                dtype = np.int64 if name in self._codes else (views[0].dtype if views else np.float64)
                out = np.empty(n, dtype=dtype)
                for chunk, places, local in groups:
                    out[places] = views[chunk][local]
                result[name] = out
            else:
                result[name] = self._arrow_column(name, order, groups, n).to_numpy(zero_copy_only=False)
        return result

    def rows(self, indices: np.ndarray) -> pa.Table:
        """The rows at ``indices`` as an Arrow table (types kept)."""
        n = len(indices)
        order, groups = self._groups(indices)
        return pa.Table.from_arrays([self._arrow_column(name, order, groups, n) for name in self.names],
                                    schema=self.table.schema)

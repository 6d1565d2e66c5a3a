"""Tabular augmentation on the augmentation contract: Gaussian jitter and MixUp for tables.

A :class:`TableBatch` is an Arrow table (or record batch) with each row's id in the
dataset; as for images and text, every draw is keyed by ``(seed, epoch, row id)``
(:class:`~datakiln.augment._random.SampleRandom`), so a row is changed the same way in any
batch, and recorded parameters replay exactly.

:class:`GaussianJitter` adds ``Normal(0, scale × spread)`` noise to each numeric column,
where the spread is **fitted on the data** (``fit``): the standard deviation by default, or
the interquartile range divided by 1.349 (a robust estimate of the same quantity for
normal data, for columns with outliers). :class:`TabularMixUp` blends each row with a
partner row (:func:`~datakiln.augment._random.partner_rows`: a fixed-point-free pairing
keyed by the row id): numeric columns interpolate, every other column (categories, text,
booleans, dates) comes from one parent, the row itself when ``lambda >= 0.5``.

Integer columns stay integers (rounded half to even) and keep their type; nulls stay null
under jitter, and under MixUp a null on either side gives the dominant parent's value.

>>> import pyarrow as pa
>>> table = pa.table({"age": [30, 40, 50], "city": ["a", "b", "c"]})
>>> jitter = GaussianJitter(0.05).fit(table)
>>> out = jitter(TableBatch(table, [0, 1, 2]), seed=1).table   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import betaincinv

from datakiln.augment._random import SampleRandom, partner_rows
from datakiln.augment.base import Augmenter, Params
from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["GaussianJitter", "TableBatch", "TabularMixUp", "table_copies"]

SPREADS = ("std", "iqr")
_IQR_TO_STD = 1.349  # IQR of a standard normal


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_arrow"):  # a datakiln Dataset
        return data.to_arrow()
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (TypeError, pa.ArrowException) as exc:
        raise InvalidArgumentError(f"tabular ops take an Arrow table, a record batch, a Dataset or "
                                   f"a pandas DataFrame, got {type(data).__name__}") from exc


@dataclass
class TableBatch:
    """Rows of a table with their ids in the dataset (and MixUp partners when needed).

    Attributes
    ----------
    table : pyarrow.Table (a RecordBatch is converted)
    row_ids : ndarray of int64
    partners : TableBatch, optional
        Each row's MixUp partner (see :meth:`from_table`).
    """

    table: pa.Table
    row_ids: np.ndarray
    partners: TableBatch | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.table = _as_table(self.table)
        self.row_ids = np.asarray(self.row_ids, dtype=np.int64).reshape(-1)
        if self.table.num_rows != self.row_ids.size:
            raise InvalidArgumentError(f"a table batch needs one row id per row: {self.table.num_rows} "
                                       f"rows, {self.row_ids.size} ids")

    def __len__(self) -> int:
        return int(self.row_ids.size)

    @classmethod
    def from_table(cls, table: Any, row_ids: Sequence[int] | np.ndarray | None = None, *,
                   partners: bool = False, seed: int = 0, epoch: int = 0,
                   name: str = "mix") -> TableBatch:
        """The rows ``row_ids`` of ``table`` (default: all), with their MixUp partners
        taken from the whole ``table`` when ``partners=True``."""
        whole = _as_table(table)
        ids = np.arange(whole.num_rows) if row_ids is None else np.asarray(row_ids, dtype=np.int64)
        rows = whole if row_ids is None else whole.take(pa.array(ids))
        batch = cls(rows, ids)
        if partners:
            mates = partner_rows(ids, whole.num_rows, seed=seed, epoch=epoch, name=name)
            batch.partners = cls(whole.take(pa.array(mates)), mates)
        return batch

    def with_table(self, table: pa.Table) -> TableBatch:
        """A copy with new values (same rows)."""
        return replace(self, table=table)

    def subset(self, index: np.ndarray) -> TableBatch:
        """The rows at ``index`` (partners included)."""
        index = np.asarray(index, dtype=np.int64)
        return TableBatch(self.table.take(pa.array(index)), self.row_ids[index],
                          None if self.partners is None else self.partners.subset(index))

    def merge(self, parts: Sequence[tuple[np.ndarray, TableBatch]]) -> TableBatch:
        """Put subsets (``(index, sub-batch)`` pairs covering every row once) back in order."""
        order = np.concatenate([np.asarray(index, dtype=np.int64) for index, _ in parts])
        joined = pa.concat_tables([part.table for _, part in parts], promote_options="permissive")
        return self.with_table(joined.take(pa.array(np.argsort(order, kind="stable"))))


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _back(values: np.ndarray, kind: pa.DataType, valid: np.ndarray | None) -> pa.Array:
    """Float values → an Arrow array of ``kind`` (integers rounded and clipped to the type)."""
    if pa.types.is_integer(kind):
        info = np.iinfo(kind.to_pandas_dtype())
        values = np.clip(np.rint(values), info.min, info.max)
    mask = None if valid is None else ~valid
    return pa.array(values, mask=mask).cast(kind, safe=False)


def _floats(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """(float64 values with nulls as 0, validity or None when there is no null)."""
    valid = None if column.null_count == 0 else column.is_valid().to_numpy(zero_copy_only=False)
    values = column.cast(pa.float64()).fill_null(0.0).to_numpy()
    return np.asarray(values, dtype=np.float64), valid


class GaussianJitter(Augmenter):
    """Add Gaussian noise to numeric columns, scaled to each column's spread.

    Parameters
    ----------
    scale : float, default 0.05
        Noise standard deviation as a fraction of the column's spread.
    columns : list of str, optional
        The columns to jitter (default: every integer and floating column).
    exclude : list of str, default ()
        Columns never jittered (a label, an id).
    spread : {"std", "iqr"}, default "std"
        The spread fitted per column: the sample standard deviation (``ddof=1``, nulls
        ignored), or ``IQR / 1.349``. A constant column gets no noise.

    Call :meth:`fit` on the data first (learned: ``spread_``, column name → spread).
    Parameters: ``{"columns", "noise"}``, ``noise`` standard normals of shape
    ``(len(batch), len(columns))``.
    """

    def __init__(self, scale: float = 0.05, *, columns: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), spread: str = "std") -> None:
        if not isinstance(scale, (int, float)) or scale < 0:
            raise InvalidArgumentError(f"scale must be a number >= 0, got {scale!r}")
        if spread not in SPREADS:
            raise InvalidArgumentError(f"spread must be one of {SPREADS}, got {spread!r}")
        self.scale, self.spread = float(scale), spread
        self.columns = None if columns is None else list(columns)
        self.exclude = list(exclude)

    def fit(self, data: Any) -> GaussianJitter:
        """Learn each numeric column's spread from ``data`` (table, Dataset, DataFrame)."""
        table = _as_table(data)
        names = self.columns if self.columns is not None else [
            f.name for f in table.schema if _numeric(f.type) and f.name not in self.exclude]
        self.spread_: dict[str, float] = {}
        for name in names:
            if name not in table.column_names:
                raise SchemaError(f"GaussianJitter: no column {name!r}; the columns are "
                                  f"{table.column_names}")
            if not _numeric(table.schema.field(name).type):
                raise SchemaError(f"GaussianJitter: column {name!r} is {table.schema.field(name).type}, "
                                  f"not numeric; leave it out of columns=")
            values = table[name].drop_null().cast(pa.float64()).to_numpy()
            if values.size < 2:
                self.spread_[name] = 0.0
            elif self.spread == "std":
                self.spread_[name] = float(np.std(values, ddof=1))
            else:
                q1, q3 = np.quantile(values, [0.25, 0.75])
                self.spread_[name] = float(q3 - q1) / _IQR_TO_STD
        return self

    def _fitted(self) -> dict[str, float]:
        if not hasattr(self, "spread_"):
            raise InvalidArgumentError("GaussianJitter needs fit(data) first: the noise is scaled "
                                       "to each column's spread on the data")
        return self.spread_

    def make_params(self, rng: SampleRandom, batch: TableBatch) -> Params:
        names = list(self._fitted())
        return {"columns": names, "noise": rng.normal(shape=(len(names),)).reshape(len(batch), len(names))}

    def apply(self, batch: TableBatch, params: Params) -> TableBatch:
        spreads = self._fitted()
        table = batch.table
        for j, name in enumerate(params["columns"]):
            if name not in table.column_names:
                raise SchemaError(f"GaussianJitter was fitted with column {name!r}, which this batch "
                                  f"lacks (columns: {table.column_names})")
            kind = table.schema.field(name).type
            values, valid = _floats(table[name])
            noisy = values + self.scale * spreads[name] * np.asarray(params["noise"])[:, j]
            table = table.set_column(table.schema.get_field_index(name), name, _back(noisy, kind, valid))
        return batch.with_table(table)


class TabularMixUp(Augmenter):
    """MixUp for tables: each row blended with its partner row by ``lambda ~ Beta(alpha, alpha)``.

    Parameters
    ----------
    alpha : float, default 0.2
        The Beta distribution's parameters (small: most rows stay close to one parent).
    columns : list of str, optional
        Numeric columns to interpolate (default: every integer and floating column not in
        ``exclude``); all other columns come from one parent.
    exclude : list of str, default ()
        Numeric columns taken from one parent instead (a label, an id, a code).

    ``lambda`` is the row's own weight: numeric ``lambda·x + (1 - lambda)·partner``;
    categorical (and every non-numeric) column from the row when ``lambda >= 0.5``, else
    from the partner. The batch needs ``partners`` (:meth:`TableBatch.from_table`).
    Parameters: ``{"lam", "partner_ids"}``.
    """

    mixes = True

    def __init__(self, alpha: float = 0.2, *, columns: Sequence[str] | None = None,
                 exclude: Sequence[str] = ()) -> None:
        if not isinstance(alpha, (int, float)) or alpha <= 0:
            raise InvalidArgumentError(f"alpha must be a number > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.columns = None if columns is None else list(columns)
        self.exclude = list(exclude)

    def make_params(self, rng: SampleRandom, batch: TableBatch) -> Params:
        if batch.partners is None:
            raise InvalidArgumentError("TabularMixUp needs each row's partner: build the batch with "
                                       "TableBatch.from_table(table, ids, partners=True)")
        lam = betaincinv(self.alpha, self.alpha, rng.uniform())
        return {"lam": lam.astype(np.float64), "partner_ids": batch.partners.row_ids.copy()}

    def apply(self, batch: TableBatch, params: Params) -> TableBatch:
        if batch.partners is None:
            raise InvalidArgumentError("TabularMixUp.apply needs batch.partners (the partner rows)")
        lam = np.asarray(params["lam"], dtype=np.float64)
        own = lam >= 0.5
        table, other = batch.table, batch.partners.table
        numeric = self.columns if self.columns is not None else [
            f.name for f in table.schema if _numeric(f.type)]
        numeric = [n for n in numeric if n not in self.exclude]
        keep = pa.array(own)
        for index, name in enumerate(table.column_names):
            kind = table.schema.field(name).type
            if name in numeric:
                x, x_valid = _floats(table[name])
                y, y_valid = _floats(other[name].cast(kind))
                mixed = lam * x + (1 - lam) * y
                both = None
                if x_valid is not None or y_valid is not None:
                    xv = np.ones(len(x), bool) if x_valid is None else x_valid
                    yv = np.ones(len(y), bool) if y_valid is None else y_valid
                    both = xv & yv
                    mixed = np.where(both, mixed, np.where(own, x, y))
                    both = np.where(both, True, np.where(own, xv, yv))
                column = _back(mixed, kind, both)
            else:
                column = pc.if_else(keep, table[name].combine_chunks(),
                                    other[name].cast(kind).combine_chunks())
            table = table.set_column(index, name, column)
        return TableBatch(table, batch.row_ids)


def table_copies(op: Augmenter, table: Any, n: int, *, seed: int = 0, epoch: int = 0) -> pa.Table:
    """``n`` augmented copies of every row of ``table``, copy ``k`` keyed by ``(row id, k)``.

    Rows come row by row (the copies of row 0 first) with a ``copy`` column (int64);
    MixUp partners are drawn per copy (``partner_rows(..., name="mix/k")``).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"the number of copies must be a positive integer, got {n!r}")
    whole = _as_table(table)
    base = SampleRandom(np.arange(whole.num_rows), seed=seed, epoch=epoch)
    copies = []
    for k in range(int(n)):
        batch = TableBatch.from_table(whole, partners=op.mixes, seed=seed, epoch=epoch, name=f"mix/{k}")
        out = op.forward(batch, base.child(f"copy/{k}"))[0].table
        copies.append(out.append_column("copy", pa.array(np.full(out.num_rows, k, dtype=np.int64))))
    joined = pa.concat_tables(copies)
    order = np.arange(whole.num_rows * int(n)).reshape(int(n), -1).T.reshape(-1)
    return joined.take(pa.array(order))

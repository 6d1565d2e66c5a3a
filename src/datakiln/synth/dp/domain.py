"""The public domain of a DP fit: numeric bounds and category lists, declared, never learned.

A differentially private fit may not look at the private data to decide its own shape:
the range of a number or the list of a column's categories would leak rows (one person's
outlying income widens the range). So every column is declared by the user, as a mapping
or a YAML/JSON file (a public schema):

.. code-block:: yaml

    columns:
      age: {low: 17, high: 90}                 # numeric: bounds (inclusive)
      capital-gain: {low: 0, high: 99999, bins: 64}
      workclass: {categories: [Private, Self-emp-not-inc, ...]}
      income: {categories: ["<=50K", ">50K"], other: false}

Out-of-domain values, documented: numbers are **clipped** to ``[low, high]`` (NaN and ±inf
count as missing); a value not in a column's category list goes to one explicit
``"(other)"`` bucket (text columns; ``other: false`` or a non-text column maps it to
missing instead). Missing values always have a cell of their own. Nothing here reads the
data: :class:`Domain` is built from the declaration alone, so a value outside it can never
widen it.

Numbers are cut into cells (:class:`NumericCells`): an integer column whose range holds at
most ``bins`` values gets one cell per value; otherwise the bounds (and 0 when inside them)
are point cells of their own, so spikes such as "capital gain = 0" stay exact, and
``bins`` equal-width intervals cover the rest.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["OTHER", "ColumnDomain", "Domain", "NumericCells", "load_domain"]

OTHER = "(other)"
DEFAULT_BINS = 32
_HOW = ("declare it in the domain: {low: ..., high: ...} for a number, {categories: [...]} for a category "
        "(from a public codebook, never from the private data)")


@dataclass(frozen=True)
class NumericCells:
    """Cells of a numeric column in value order: ``low[i] == high[i]`` marks a point cell."""

    low: np.ndarray
    high: np.ndarray

    @property
    def size(self) -> int:
        return int(self.low.size)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Cell of each finite value (values clipped to the bounds first)."""
        x = np.clip(x, self.low[0], self.high[-1])
        points = self.low == self.high
        intervals = np.nonzero(~points)[0]
        if not intervals.size:  # one point per value: the nearest point
            j = np.clip(np.searchsorted(self.low, x), 1, self.size - 1) if self.size > 1 else None
            if j is None:
                return np.zeros(x.shape, dtype=np.int64)
            return np.where(np.abs(x - self.low[j - 1]) <= np.abs(self.low[j] - x), j - 1, j)
        cell = np.zeros(x.shape, dtype=np.int64)
        if intervals.size:
            edges = np.r_[self.low[intervals], self.high[intervals[-1]]]
            j = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, intervals.size - 1)
            cell = intervals[j]
        for i in np.nonzero(points)[0]:
            cell[x == self.low[i]] = i
        return cell

    def values(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A value for each cell: the point, or uniform inside the interval."""
        low, high = self.low[cells], self.high[cells]
        return low + rng.random(cells.shape) * (high - low)

    def quantiles(self, shares: np.ndarray, points: int) -> np.ndarray:
        """``points`` evenly spaced quantiles of the piecewise-uniform law with cell ``shares``."""
        shares = np.clip(np.asarray(shares, dtype=np.float64), 0, None)
        shares = shares / shares.sum() if shares.sum() > 0 else np.full(self.size, 1 / self.size)
        cumulative = np.cumsum(shares)
        u = np.linspace(0, 1, points)
        cell = np.minimum(np.searchsorted(cumulative, u, side="left"), self.size - 1)
        start = cumulative[cell] - shares[cell]
        within = np.where(shares[cell] > 0, (u - start) / np.where(shares[cell] > 0, shares[cell], 1), 0.5)
        out = self.low[cell] + np.clip(within, 0, 1) * (self.high[cell] - self.low[cell])
        return np.maximum.accumulate(out)


@dataclass(frozen=True)
class ColumnDomain:
    """One declared column: ``kind`` "numeric" (``low``, ``high``, ``bins``) or "categorical"
    (``categories``, ``other``)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    bins: int = DEFAULT_BINS
    categories: tuple[Any, ...] = ()
    other: bool = True

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "numeric":
            return {"low": self.low, "high": self.high, "bins": self.bins}
        return {"categories": list(self.categories), "other": self.other}

    def cells(self, dtype: pa.DataType, bins: int | None = None) -> NumericCells:
        """The cells of a numeric column of Arrow type ``dtype`` (at most ``bins`` intervals)."""
        assert self.low is not None and self.high is not None
        bins = self.bins if bins is None else min(bins, self.bins)
        low, high = self.low, self.high
        if pa.types.is_integer(dtype) and high - low + 1 <= bins:
            points = np.arange(math.ceil(low), math.floor(high) + 1, dtype=np.float64)
            return NumericCells(points, points.copy())
        if high == low:
            return NumericCells(np.array([low]), np.array([high]))
        points = sorted({low, high} | ({0.0} if low < 0 < high else set()))
        edges = np.unique(np.r_[np.linspace(low, high, bins + 1), points])
        cells = [(p, p) for p in points] + list(zip(edges[:-1], edges[1:]))
        cells.sort()
        return NumericCells(np.array([c[0] for c in cells]), np.array([c[1] for c in cells]))


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"domain of column {name!r}: {key!r} must be a finite number, got "
                                   f"{value!r:.40}")
    return float(value)


def _column(name: str, spec: Any) -> ColumnDomain:
    if not isinstance(spec, dict):
        raise InvalidArgumentError(f"domain of column {name!r} must be a mapping; {_HOW}; got {spec!r:.60}")
    unknown = set(spec) - {"low", "high", "bins", "categories", "other", "type"}
    if unknown:
        raise InvalidArgumentError(f"domain of column {name!r} has unknown keys {sorted(unknown)} (known: "
                                   f"low, high, bins, categories, other)")
    if "categories" in spec:
        values = spec["categories"]
        if not isinstance(values, list) or not values or any(v is None for v in values) or \
                len(set(map(repr, values))) < len(values):
            raise InvalidArgumentError(f"domain of column {name!r}: 'categories' must be a non-empty list of "
                                       f"distinct, non-null values, got {values!r:.80}")
        if not isinstance(spec.get("other", True), bool):
            raise InvalidArgumentError(f"domain of column {name!r}: 'other' must be true or false")
        return ColumnDomain(name, "categorical", categories=tuple(values), other=spec.get("other", True))
    if "low" not in spec or "high" not in spec:
        raise InvalidArgumentError(f"domain of column {name!r} gives neither categories nor both low and "
                                   f"high; {_HOW}")
    low, high = _number(name, "low", spec["low"]), _number(name, "high", spec["high"])
    bins = spec.get("bins", DEFAULT_BINS)
    if low > high:
        raise InvalidArgumentError(f"domain of column {name!r}: low ({low:g}) is above high ({high:g})")
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 4096:
        raise InvalidArgumentError(f"domain of column {name!r}: 'bins' must be a whole number in 1..4096, "
                                   f"got {bins!r:.40}")
    return ColumnDomain(name, "numeric", low=low, high=high, bins=bins)


@dataclass(frozen=True)
class Domain:
    """Declared domains of a table's columns (see the module docstring for the format)."""

    columns: dict[str, ColumnDomain]
    source: str = "<mapping>"

    @classmethod
    def from_dict(cls, data: Any, source: str = "<mapping>") -> Domain:
        if isinstance(data, dict) and "columns" in data:
            data = data["columns"]
        if not isinstance(data, dict) or not data:
            raise InvalidArgumentError(f"the domain ({source}) must map column names to their declarations "
                                       f"(optionally under 'columns:'); {_HOW}")
        return cls({str(n): _column(str(n), spec) for n, spec in data.items()}, source)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": {n: c.to_dict() for n, c in self.columns.items()}}

    def check(self, schema: pa.Schema) -> None:
        """Every column of ``schema`` declared, with a kind its type can take; else a message saying how."""
        missing = [n for n in schema.names if n not in self.columns]
        if missing:
            raise SchemaError(f"the DP domain ({self.source}) does not declare the columns {missing}; "
                              f"{_HOW}, or drop those columns before fitting")
        extra = sorted(set(self.columns) - set(schema.names))
        if extra:
            raise SchemaError(f"the DP domain ({self.source}) declares {extra}, which the data does not have "
                              f"(its columns: {schema.names})")
        for field in schema:
            dtype = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            column = self.columns[field.name]
            numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            if column.kind == "numeric" and not numeric:
                raise SchemaError(f"the DP domain declares {field.name!r} numeric (low/high) but it is "
                                  f"{field.type}; declare its categories instead")
            if column.kind == "categorical":
                if pa.types.is_nested(dtype) or pa.types.is_null(dtype):
                    raise SchemaError(f"column {field.name!r} ({field.type}) cannot be modelled under DP")
                try:
                    pa.array(list(column.categories)).cast(dtype)
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                    raise SchemaError(f"the DP domain's categories of {field.name!r} are not values of its "
                                      f"type {field.type} ({exc})") from exc


def load_domain(domain: Any) -> Domain:
    """A :class:`Domain` from a Domain, a mapping, or the path of a YAML/JSON file."""
    if isinstance(domain, Domain):
        return domain
    if domain is None:
        raise InvalidArgumentError(f"a DP fit needs a declared public domain (domain=...): {_HOW}; e.g. "
                                   f"domain='domain.yaml' or domain={{'age': {{'low': 0, 'high': 120}}}}")
    if isinstance(domain, dict):
        return Domain.from_dict(domain)
    if isinstance(domain, (str, os.PathLike)):
        path = Path(domain).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read the domain file {str(path)!r}: "
                                       f"{exc.strerror or exc}") from exc
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgumentError(f"the domain file {str(path)!r} is not valid JSON/YAML "
                                       f"({exc})") from exc
        except Exception as exc:  # yaml.YAMLError (yaml imported lazily)
            raise InvalidArgumentError(f"the domain file {str(path)!r} is not valid YAML ({exc})") from exc
        return Domain.from_dict(data, str(path))
    raise InvalidArgumentError(f"domain must be a mapping, a Domain or the path of a YAML/JSON file, got "
                               f"{type(domain).__name__}")


def category_codes(column: pa.ChunkedArray | pa.Array, declared: ColumnDomain,
                   text_typed: bool) -> np.ndarray:
    """Code of each value among the declared categories (``len(categories)``: the other bucket when
    the column has one; -1: missing, and out-of-list values of a column without one)."""
    plain = column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
    values = pa.array(list(declared.categories)).cast(plain.type)
    index = pc.index_in(plain, value_set=values).to_numpy(zero_copy_only=False)
    codes = np.nan_to_num(np.asarray(index, dtype=np.float64), nan=-1).astype(np.int64)
    outside = (codes < 0) & np.asarray(pc.is_valid(plain).to_numpy(zero_copy_only=False), dtype=bool)
    codes[outside] = len(declared.categories) if (declared.other and text_typed) else -1
    return codes


def numeric_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Floats of a numeric column; nulls, NaN and ±inf as NaN (all counted as missing under DP)."""
    if pa.types.is_decimal(column.type):
        column = pc.cast(column, pa.float64())
    x = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)

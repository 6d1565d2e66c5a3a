"""The reversible column-transform contract, shared by cleaning, synthesis and balancing.

A transform follows scikit-learn's habits: ``__init__`` only stores its arguments; ``fit``
validates, learns from the data batch by batch (a Dataset, Arrow table or pandas frame)
and returns ``self``; learned state ends in ``_``. ``transform`` and
``inverse_transform`` change columns, never rows, and round-trip exactly where the
arithmetic allows (integers, categories, datetimes, nulls). A fitted transform is plain
data: ``to_dict`` / ``save`` write JSON, :func:`load` reads it back; never pickle.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from datakiln.errors import InvalidArgumentError, SchemaError

__all__ = ["FORMAT_VERSION", "Transform", "as_batches", "load", "register", "schema_of"]

FORMAT_VERSION = 1
_REGISTRY: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    """Class decorator: make ``cls`` loadable by name from saved JSON."""
    _REGISTRY[cls.__name__] = cls
    return cls


def as_batches(data: Any, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Tables of ``data`` (Dataset, Arrow table/batch or pandas DataFrame), streamed."""
    from datakiln.dataset.dataset import Dataset

    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if type(data).__name__ == "DataFrame":
        data = pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.Table):
        yield data if columns is None else data.select(list(columns))
        return
    if isinstance(data, Dataset):
        source = data if columns is None else data.select(list(columns))
        for batch in source.iter_batches():
            yield pa.Table.from_batches([batch])
        return
    raise InvalidArgumentError(
        f"expected a datakiln Dataset, a pyarrow Table or a pandas DataFrame, got "
        f"{type(data).__name__}")


def schema_of(data: Any) -> pa.Schema:
    """The Arrow schema of ``data`` without reading its rows (pandas: converts one row)."""
    from datakiln.dataset.dataset import Dataset

    if isinstance(data, Dataset):
        return data.arrow_schema
    if type(data).__name__ == "DataFrame":
        return pa.Schema.from_pandas(data.head(1), preserve_index=False)
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return data.schema
    raise InvalidArgumentError(
        f"expected a datakiln Dataset, a pyarrow Table or a pandas DataFrame, got "
        f"{type(data).__name__}")


class Transform:
    """Base class: subclasses implement ``_fit_start/_fit_batch/_fit_end``, ``_forward``,
    ``_backward`` and list their learned attributes in ``_state``."""

    _state: ClassVar[tuple[str, ...]] = ()
    columns: Sequence[str] | None

    def _params(self) -> dict[str, Any]:
        """The constructor's arguments, as stored by ``__init__``."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------
    def _select(self, available: Sequence[str]) -> list[str]:
        wanted = list(self.columns) if self.columns is not None else self._default_columns(available)
        missing = [c for c in wanted if c not in available]
        if missing:
            raise SchemaError(f"{type(self).__name__}: no column(s) {missing}; the columns are "
                              f"{list(available)}")
        return wanted

    def _default_columns(self, available: Sequence[str]) -> list[str]:
        raise InvalidArgumentError(f"{type(self).__name__} needs columns=[...]")

    def fit(self, data: Any) -> Transform:
        """Learn from ``data`` batch by batch; returns ``self``."""
        self.columns_ = self._select(schema_of(data).names)
        self._fit_start()
        for table in as_batches(data, self.columns_):
            self._fit_batch(table)
        self._fit_end()
        return self

    def _fit_start(self) -> None:
        """Reset the running statistics."""

    def _fit_batch(self, table: pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_end(self) -> None:
        """Turn running statistics into learned state."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise InvalidArgumentError(f"{type(self).__name__} is not fitted yet; call fit first")

    # -- applying -------------------------------------------------------------------------
    def transform(self, table: Any) -> pa.Table:
        """Forward-transform the fitted columns of ``table``; other columns pass through."""
        self._check_fitted()
        table = _as_table(table)
        missing = [c for c in self.columns_ if c not in table.column_names]
        if missing:
            raise SchemaError(f"{type(self).__name__}.transform: the table lacks {missing}")
        return self._forward(table)

    def inverse_transform(self, table: Any) -> pa.Table:
        """Undo :meth:`transform`: the original columns, types and nulls."""
        self._check_fitted()
        return self._backward(_as_table(table))

    def fit_transform(self, data: Any) -> pa.Table:
        """``fit(data)`` then ``transform`` of all of it (in memory)."""
        return self.fit(data).transform(pa.concat_tables(list(as_batches(data))))

    def _forward(self, table: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, table: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- plain-data form ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"format", "version", "type", "params", "state"}``: JSON-ready plain data."""
        self._check_fitted()
        state = {name: getattr(self, name) for name in ("columns_", *self._state)}
        return {"format": "datakiln.transform", "version": FORMAT_VERSION,
                "type": type(self).__name__, "params": self._params(), "state": state}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transform:
        """Rebuild a fitted transform from :meth:`to_dict`'s output."""
        if not isinstance(data, dict) or data.get("format") != "datakiln.transform":
            raise SchemaError("not a datakiln transform: the 'format' key is missing or wrong")
        if data.get("version", 0) > FORMAT_VERSION:
            raise SchemaError(f"this transform was saved by a newer datakiln (format version "
                              f"{data['version']} > {FORMAT_VERSION}); upgrade datakiln")
        kind = _REGISTRY.get(data.get("type", ""))
        if kind is None:
            raise SchemaError(f"unknown transform type {data.get('type')!r}; known: "
                              f"{sorted(_REGISTRY)}")
        params = data.get("params", {})
        transform = kind(**params)
        for name, value in data.get("state", {}).items():
            setattr(transform, name, value)
        return transform

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the fitted transform as JSON, atomically; an existing file only if datakiln
        wrote it (its ``"datakiln"`` marker key) or with ``overwrite=True``."""
        from datakiln.io.write import report_marker, write_text_atomic

        text = json.dumps({**report_marker("transform"), **self.to_dict()}, indent=1)
        write_text_atomic(path, text, overwrite=overwrite)


def load(path: str | os.PathLike[str]) -> Transform:
    """Read a transform written by :meth:`Transform.save`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"cannot read transform file {str(path)!r}: {exc}") from exc
    return Transform.from_dict(data)


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.concat_tables(list(as_batches(data)))


def type_from_string(text: str) -> pa.DataType:
    """Arrow type from its string form (``"int64"``, ``"timestamp[us, tz=UTC]"``, ...)."""
    import re

    match = re.fullmatch(r"timestamp\[(\w+)(?:, tz=(.+))?\]", text)
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2))
    match = re.fullmatch(r"decimal128\((\d+), (\d+)\)", text)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    match = re.fullmatch(r"(date32|date64)\[day\]|(date32|date64)", text)
    if match:
        return pa.date32() if "32" in text else pa.date64()
    match = re.fullmatch(r"duration\[(\w+)\]", text)
    if match:
        return pa.duration(match.group(1))
    if text == "string":
        return pa.string()
    if text == "large_string":
        return pa.large_string()
    return pa.type_for_alias(text)

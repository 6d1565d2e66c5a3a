"""Sources: ``read`` files and URLs, ``read_sql`` databases; each returns a lazy Dataset.

One module per family (csv, parquet, json, arrow, sql) implements the :class:`Source`
protocol in :mod:`datakiln.io.base`; ``write`` holds the atomic writers.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datakiln.errors import InvalidArgumentError
from datakiln.io._files import detect_format, resolve_files
from datakiln.io.base import ReadStats, SizeEstimate, Source

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["ReadStats", "SizeEstimate", "Source", "open_source", "read", "read_sql"]

PathLike = str | os.PathLike[str]


def _construct(cls: type, where: str, *args: Any, **options: Any) -> Source:
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "files")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {unknown} for reading {where}; the options are {accepted}")
    return cls(*args, **options)


def open_source(path: PathLike | Sequence[PathLike], *, format: str | None = None,
                **options: Any) -> Source:
    """Resolve ``path`` and build the :class:`Source` for its format (see :func:`read`)."""
    files = resolve_files(path)
    name = detect_format(files.paths, format)
    if name == "csv":
        from datakiln.io.csv import CsvSource as cls
    elif name == "parquet":
        from datakiln.io.parquet import ParquetSource as cls
    elif name == "json":
        from datakiln.io.json import JsonSource as cls
    else:
        from datakiln.io.arrow import ArrowFileSource as cls
    if name == "csv" and "delimiter" not in options and any(
            p.lower().removesuffix(".gz").endswith((".tsv", ".tab")) for p in files.paths):
        options["delimiter"] = "\t"
    return _construct(cls, f"{name} files", files, **options)


def read(
    path: PathLike | Sequence[PathLike],
    *,
    format: str | None = None,
    schema: Mapping[str, Any] | str | Path | None = None,
    memory_budget: int | str | None = None,
    **options: Any,
) -> Dataset:
    """Open files or a URL as a lazy :class:`~datakiln.Dataset`.

    Parameters
    ----------
    path : str, path, or list of them
        A file, directory (Parquet datasets, hive partitions), glob (``"data/*.csv"``), list
        of files sharing one schema, or fsspec URL (``s3://``, ``gs://``, ``memory://``,
        ``file://``; the matching fsspec package must be installed).
    format : {"csv", "parquet", "json", "arrow"}, optional
        Needed only when the file endings do not tell.
    schema : dict or path, optional
        Column kind overrides, e.g. ``{"zip": "categorical"}`` or a JSON/YAML file.
    memory_budget : int or str, optional
        Default budget for streaming work on this dataset, e.g. ``"1GB"``.
    **options
        Format options. CSV: ``delimiter``, ``header``, ``names``, ``na_values``, ``trim``,
        ``encoding``, ``column_types``, ``on_bad_rows`` ("error" | "skip"),
        ``newlines_in_values``. Parquet: ``partitioning``.

    Examples
    --------
    >>> ds = datakiln.read("adult.csv", names=ADULT_COLUMNS)   # doctest: +SKIP
    >>> ds.filter(pc.field("age") > 30).select(["age", "income"]).head(5)  # doctest: +SKIP
    """
    from datakiln.dataset.dataset import Dataset

    return Dataset(open_source(path, format=format, **options), kinds=schema,
                   memory_budget=memory_budget)


def read_sql(
    table_or_query: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    chunk_rows: int = 10_000,
    schema: Mapping[str, Any] | str | Path | None = None,
    memory_budget: int | str | None = None,
) -> Dataset:
    """Open a database table or query as a lazy :class:`~datakiln.Dataset`.

    ``url`` is SQLAlchemy-style, with or without a driver (``postgresql://root@127.0.0.1/test``,
    ``mysql://root@127.0.0.1:3306/test``, ``sqlite:///file.db``). Rows stream through a
    server-side cursor ``chunk_rows`` at a time; ``params`` bind ``:name`` placeholders.

    >>> ds = datakiln.read_sql("SELECT * FROM adult WHERE age > :age", "sqlite:///a.db",
    ...                        params={"age": 30})  # doctest: +SKIP
    """
    from datakiln.dataset.dataset import Dataset
    from datakiln.io.sql import SqlSource

    return Dataset(SqlSource(table_or_query, url, params=params, chunk_rows=chunk_rows),
                   kinds=schema, memory_budget=memory_budget)

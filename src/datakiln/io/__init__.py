"""Sources: one module per family (csv, parquet, json, arrow, sql, xml) implements the
:class:`Source` protocol in :mod:`datakiln.io.base`; ``write`` holds the atomic writers.

:func:`open_source` turns paths and URLs into a Source. Wrapping a source in a Dataset is
the layer above: ``datakiln.read`` and ``datakiln.read_sql`` live in
:mod:`datakiln.dataset.reading`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from datakiln.errors import InvalidArgumentError
from datakiln.io._files import detect_format, resolve_files
from datakiln.io.base import ReadStats, SizeEstimate, Source
from datakiln.io.images import image_family

__all__ = ["ReadStats", "SizeEstimate", "Source", "open_source"]

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
    """Resolve ``path`` and build the :class:`Source` for its format (see ``datakiln.read``)."""
    files = resolve_files(path)
    special = image_family(files.paths, format)
    if special is not None:
        return _open_image_family(special, path, files, options)
    name = detect_format(files.paths, format)
    if name == "csv":
        from datakiln.io.csv import CsvSource as cls
    elif name == "parquet":
        from datakiln.io.parquet import ParquetSource as cls
    elif name == "json":
        from datakiln.io.json import JsonSource as cls
    elif name == "xml":
        from datakiln.io.xml import XmlSource as cls
    else:
        from datakiln.io.arrow import ArrowFileSource as cls
    if name == "csv" and "delimiter" not in options and any(
            p.lower().removesuffix(".gz").endswith((".tsv", ".tab")) for p in files.paths):
        options["delimiter"] = "\t"
    return _construct(cls, f"{name} files", files, **options)


def _open_image_family(family: str, path: Any, files: Any, options: dict[str, Any]) -> Source:
    if "on_bad_rows" in options and family != "idx":  # the CLI's --skip-bad-rows
        options["on_error"] = "skip" if options.pop("on_bad_rows") == "skip" else "raise"
    if family == "idx":
        from datakiln.io.idx import IdxSource

        return _construct(IdxSource, "IDX files", files, **options)
    if family == "tar":
        from datakiln.io.shards import ShardSource

        return _construct(ShardSource, "tar shards", files, **options)
    from datakiln.io.images import ImageFolderSource, image_files

    extensions = options.pop("extensions", None)
    return _construct(ImageFolderSource, "image files", image_files(path, extensions), **options)

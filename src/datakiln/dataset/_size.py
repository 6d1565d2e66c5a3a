"""How many bytes a dataset takes once decoded into Arrow: what a memory budget compares.

Bytes on storage say little: a zstd Parquet file of 73 KB can decode to 130 MB. The
estimate is the larger of two views:

- **Parquet metadata**: the uncompressed size of the column chunks read (encoded pages,
  before dictionary and run-length decoding, so a lower bound);
- **a sample**: the decoded bytes per row of the dataset's first rows (the inference
  sample, operations applied) times the row count: from metadata (Parquet, Arrow), a
  ``COUNT(*)`` (SQL), the sample's own size (fewer rows than the sample), or for text
  files the file size over the sample's bytes per row written back as CSV (a CSV or
  JSON file decodes to about as many rows as that), and a counting pass for compressed
  text.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv

from datakiln.io._files import split_compression
from datakiln.io.arrow import ArrowFileSource, TableSource
from datakiln.io.parquet import ParquetSource

if TYPE_CHECKING:
    from datakiln.dataset.dataset import Dataset

__all__ = ["decoded_bytes"]


def _parquet_bytes(source: ParquetSource, columns: list[str] | None) -> int:
    """Uncompressed bytes of the column chunks of ``columns`` (all when None), all files."""
    total = 0
    for fragment in source.dataset.get_fragments():
        metadata = fragment.metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                name = chunk.path_in_schema.split(".", 1)[0]
                if columns is None or name in columns:
                    total += chunk.total_uncompressed_size
    return total


def _text_rows(dataset: Dataset, sample: pa.Table) -> int | None:
    """Rows of an uncompressed text source, from its size and the sample's width as CSV."""
    files = getattr(dataset.source, "files", None)
    if files is None or any(split_compression(path)[1] for path in files.paths):
        return None
    out = io.BytesIO()
    try:
        pacsv.write_csv(sample, out)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    row_bytes = max(1.0, len(out.getvalue()) / max(sample.num_rows, 1))
    return int(files.total_bytes / row_bytes) + 1


def decoded_bytes(dataset: Dataset, sample_rows: int) -> int:
    """Estimated Arrow bytes of all of ``dataset``'s rows (see the module docstring)."""
    source = dataset.source
    if not dataset._ops and isinstance(source, TableSource):
        return int(source.table.nbytes)
    if not dataset._ops and isinstance(source, ArrowFileSource):
        return int(source.files.total_bytes)  # uncompressed IPC: the file is the table
    sample = dataset._inference_sample()
    if sample.num_rows < sample_rows:  # the sample is everything
        return int(sample.nbytes)
    rows = source.estimate_size().rows
    if rows is None:
        rows = _text_rows(dataset, sample)
    if rows is None:
        rows = dataset.count()  # a streaming pass (compressed text): bounded memory
    estimate = int(sample.nbytes / sample.num_rows * rows)
    if isinstance(source, ParquetSource) and all(op.kind == "select" for op in dataset._ops):
        columns, _, _ = dataset._pushdown()
        estimate = max(estimate, _parquet_bytes(source, None if columns is None else list(columns)))
    return estimate

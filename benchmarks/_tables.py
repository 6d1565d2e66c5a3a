"""Generated benchmark tables: 12 mixed columns, written batch by batch (bounded memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CITIES = np.array([f"metropolitan_area_{i:03d}" for i in range(60)])
SEGMENTS = np.array(["retail", "gold", "silver", "online", "partner"])


def mixed_batch(start: int, rows: int, seed: int) -> pa.Table:
    """Rows ``start .. start+rows`` of a 12-column table with nulls, skew and categories."""
    rng = np.random.default_rng([seed, start])
    ids = np.arange(start, start + rows, dtype=np.int64)
    income = rng.lognormal(10.5, 0.6, rows)
    ratio = rng.random(rows)
    ratio_mask = rng.random(rows) < 0.05
    count = rng.poisson(3.0, rows).astype(np.int64)
    count_mask = rng.random(rows) < 0.02
    signup = np.datetime64("2015-01-01T00:00:00", "s") + rng.integers(0, 10 * 365 * 86400, rows)
    return pa.table(
        {
            "id": ids,
            "age": rng.integers(18, 90, rows),
            "income": income,
            "score": rng.normal(0.0, 1.0, rows),
            "ratio": pa.array(ratio, mask=ratio_mask),
            "visits": pa.array(count, mask=count_mask),
            "city": CITIES[rng.zipf(1.6, rows) % len(CITIES)],
            "segment": SEGMENTS[rng.integers(0, len(SEGMENTS), rows)],
            "active": rng.random(rows) < 0.3,
            "signup": pa.array(signup, type=pa.timestamp("s")),
            "balance": rng.normal(1000.0, 5000.0, rows),
            "zeros": np.where(rng.random(rows) < 0.7, 0.0, rng.exponential(50.0, rows)),
        }
    )


def write_mixed(path: Path, rows: int, fmt: str, seed: int = 0, chunk: int = 500_000,
                row_group: int = 500_000) -> Path:
    """Write ``rows`` generated rows as CSV or Parquet at ``path`` without holding them all."""
    first = mixed_batch(0, 1, seed)
    writer = None
    try:
        for start in range(0, rows, chunk):
            table = mixed_batch(start, min(chunk, rows - start), seed)
            if writer is None:
                writer = (pacsv.CSVWriter(str(path), first.schema) if fmt == "csv"
                          else pq.ParquetWriter(str(path), first.schema, compression="zstd"))
            if fmt == "csv":
                writer.write_table(table)
            else:
                writer.write_table(table, row_group_size=row_group)
    finally:
        if writer is not None:
            writer.close()
    return path

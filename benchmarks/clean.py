"""Cleaning speed: datakiln's Cleaner against pandas + scikit-learn, in one run.

Generates a table (default 5,000,000 rows × 12 columns) with missing values, exact
duplicate rows, padded text and outliers, as zstd Parquet in a temporary folder. Both
sides read the file, trim text, drop exact duplicates, impute medians (numbers) and modes
(text), clip outliers at the IQR fences, and write zstd Parquet. Median of ``--repeats``.

    python benchmarks/clean.py [--rows 5000000] [--repeats 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _tables import mixed_batch

import datakiln
from datakiln.clean import Cleaner, DropDuplicates, Impute, Outliers, RepairTypes


def dirty_batch(start: int, rows: int, seed: int) -> pa.Table:
    """The mixed table with 5 % nulls, 1 % duplicated rows, padded text and outliers."""
    table = mixed_batch(start, rows, seed).drop_columns(["id"])
    rng = np.random.default_rng([seed, start, 1])
    repeat = rng.random(rows) < 0.01
    table = table.take(pa.array(np.where(repeat, np.maximum(np.arange(rows) - 1, 0), np.arange(rows))))
    for name in ("age", "income", "city"):
        mask = pa.array(rng.random(rows) < 0.05)
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.if_else(mask, pa.scalar(None, table[name].type), table[name]))
    padded = pc.binary_join_element_wise(" ", table["segment"], "")
    table = table.set_column(table.schema.get_field_index("segment"), "segment",
                             pc.if_else(pa.array(rng.random(rows) < 0.3), padded, table["segment"]))
    spikes = np.where(rng.random(rows) < 0.001, 1e9, 0.0)
    return table.set_column(table.schema.get_field_index("balance"), "balance",
                            pc.add(table["balance"], pa.array(spikes)))


def write_dirty(path: Path, rows: int, chunk: int = 500_000) -> None:
    writer = None
    for start in range(0, rows, chunk):
        table = dirty_batch(start, min(chunk, rows - start), 0)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()


def with_datakiln(source: Path, target: Path) -> int:
    cleaner = Cleaner([RepairTypes(numbers=False, dates=False, case=False), DropDuplicates(),
                       Impute(strategy="median"), Outliers(method="iqr", action="clip")])
    dataset = datakiln.read(source)
    return cleaner.fit(dataset).transform(dataset, output=target).count()


def with_pandas(source: Path, target: Path) -> int:
    import pandas as pd
    from sklearn.impute import SimpleImputer

    frame = pd.read_parquet(source)
    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("string", "str")]
    for column in text:
        frame[column] = frame[column].str.strip()
    frame = frame.drop_duplicates()
    numbers = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    frame[numbers] = SimpleImputer(strategy="median").fit_transform(frame[numbers])
    if text:
        frame[text] = SimpleImputer(strategy="most_frequent").fit_transform(frame[text])
    q1, q3 = frame[numbers].quantile(0.25), frame[numbers].quantile(0.75)
    frame[numbers] = frame[numbers].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1), axis=1)
    frame.to_parquet(target, compression="zstd", index=False)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="kiln-clean-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"dirty_{args.rows}.parquet"
    if not source.exists():
        write_dirty(source, args.rows)
    runs: dict[str, list[float]] = {"pandas + scikit-learn": [], "datakiln Cleaner": []}
    rows: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, run in (("pandas + scikit-learn", with_pandas), ("datakiln Cleaner", with_datakiln)):
            started = time.perf_counter()
            rows[name] = run(source, folder / f"out_{name[:4]}.parquet")
            runs[name].append(time.perf_counter() - started)
    print(f"{args.rows:,} rows × 11 columns (5 % nulls in 3 columns, ~1 % duplicate rows, padded "
          f"text, outliers); median of {args.repeats}")
    print(f"| {'tool':24s} | {'median s':>9s} | {'rows out':>10s} | {'M rows/s':>9s} |")
    print(f"|{'-' * 26}|{'-' * 10}:|{'-' * 11}:|{'-' * 10}:|")
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"| {name:24s} | {median:9.2f} | {rows[name]:>10,} | {args.rows / median / 1e6:9.2f} |")
    ratio = statistics.median(runs["pandas + scikit-learn"]) / statistics.median(runs["datakiln Cleaner"])
    print(f"datakiln Cleaner speed = {ratio:.2f}x pandas + scikit-learn")


if __name__ == "__main__":
    main()
